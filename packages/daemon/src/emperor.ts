// The emperor's own life: wires sources, reconciler and runners, and tears them down once.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { vassalNameOf, type SystemLookup, type VassalConfig } from '@emperor/config';
import { DirSource, parseWatchTarget, type Scan, type WatchNote } from './sources/dir-source.js';
import { Reconciler } from './reconciler.js';
import { VassalRunner } from './runner/vassal-runner.js';
import { SpawnGate } from './runner/spawn-gate.js';
import { openVassalLog, type VassalLog } from './os/vassal-log.js';
import { openStateFile, cleanupLeftovers } from './os/state-file.js';
import { readStartTime, type ProcStat } from './os/process-tree.js';
import { setUpContainment, type ContainmentMode } from './os/containment/containment.js';
import { openConfinement, type ContainmentInfo } from './runner/confinement.js';
import { systemdNotifier } from './os/systemd-notify.js';

/** Names of removed vassals whose log path is remembered. */
const MAX_GONE_LOGS = 10_000;

export interface EmperorOptions {
  /** `--vassals` values: directories or file globs inside one directory. */
  readonly vassals: readonly string[];
  readonly logDir: string;
  /** Directory for the state file (and, later, the control socket). */
  readonly runtimeDir: string;
  readonly logger: Logger;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly lookup?: SystemLookup;
  readonly now?: () => number;
  /**
   * `auto` (default): a cgroup per instance where one can be had, else the subreaper; `cgroup`:
   * refuse to start without; `subreaper`: never try cgroups (`run --containment`).
   */
  readonly containment?: 'auto' | ContainmentMode;
  /** The uWSGI binary that runs `[uwsgi]` vassal files (`run --uwsgi`); default `uwsgi` on PATH. */
  readonly uwsgi?: string;
  /** Tyrant mode (`run --tyrant`): each vassal runs as the owner of its file; root only. */
  readonly tyrant?: boolean;
}

export interface Emperor {
  readonly reconciler: Reconciler;
  /** How instances are contained: `emperor.containment` in status. */
  readonly containment: ContainmentInfo;
  /** Processes that left their instance's tree and group, by `instanceKey`, for usage (status). */
  escapees(procs: readonly ProcStat[]): Map<string, number[]>;
  /** Calls `listener` after every event a vassal handled (status readers, `--wait`); returns an unsubscribe. */
  subscribe(listener: (runner: VassalRunner) => void): () => void;
  /** Calls `listener` with the reaction time (ms from a file's first change event to the start or reload). */
  onReaction(listener: (name: string, ms: number) => void): () => void;
  /** SIGHUP: re-read every directory. */
  rescan(): Promise<void>;
  /** SIGUSR1: reopen every log file. */
  reopenLogs(): void;
  /** Watched directories that do not exist now (watched for: their vassals start when they appear). */
  missingDirs(): string[];
  /** Vassal files that are symlinks leading nowhere: each starts when its target appears. */
  danglingLinks(): { file: string; target: string }[];
  /**
   * Where the log of a vassal that is gone would be: the path it last wrote (remembered since
   * this emperor started), else `<log-dir>/NAME.log`. Undefined when no such file exists.
   */
  goneLogPath(name: string): string | undefined;
  /** Stops every vassal in parallel and releases everything; idempotent. */
  close(): Promise<void>;
  /** A second SIGTERM: SIGKILL every process of every instance now. */
  killAll(): void;
}

export async function startEmperor(options: EmperorOptions): Promise<Emperor> {
  const { logger } = options;
  if (options.tyrant === true && process.getuid?.() !== 0)
    throw Object.assign(
      new Error(
        `--tyrant runs each vassal as the owner of its file, which takes root, and the emperor runs as uid ${process.getuid?.() ?? '?'}: run it as root, or without --tyrant`,
      ),
      { code: 'EMP_TYRANT_NOT_ROOT' },
    );
  const now = options.now ?? Date.now;
  const env = options.env ?? process.env;
  const statePath = join(options.runtimeDir, 'emperor.state.json');
  const swept = await cleanupLeftovers(statePath, logger);
  const killed = swept.killed.flatMap((k) => k.pids);
  if (killed.length > 0)
    logger.warn({ event: 'leftovers-killed', pids: killed.join(',') }, 'leftovers-killed');
  const stateFile = openStateFile({ path: statePath, logger });

  // After the state file: an emperor still running on this runtime directory has refused us,
  // so the tree below (named after the directory) is no other live emperor's.
  const containment = setUpContainment({
    name: treeName(options.runtimeDir),
    ...(options.containment === 'subreaper' ? { force: 'subreaper' as const } : {}),
  });
  if (options.containment === 'cgroup' && containment.mode !== 'cgroup') {
    throw Object.assign(new Error(`cannot contain vassals in cgroups: ${containment.reason}`), {
      code: 'EMP_NO_CGROUP',
    });
  }
  const confinement = openConfinement(containment, logger);
  const { info } = confinement;
  logger.info(
    { event: 'containment', mode: info.mode, cgroup: info.cgroup, reason: info.reason },
    info.mode === 'cgroup'
      ? `containment: a cgroup per instance under ${info.cgroup}`
      : `containment: child subreaper (no cgroup: ${info.reason})`,
  );
  const leftInTree = await confinement.sweep();
  if (leftInTree.length > 0)
    logger.warn({ event: 'leftovers-killed', pids: leftInTree.join(',') }, 'leftovers-killed');

  const logs = new Map<string, { log: VassalLog; users: Set<string> }>();
  const logPath = (c: VassalConfig): string => c.log ?? join(options.logDir, `${c.name}.log`);
  const openLog = (c: VassalConfig): VassalLog => {
    const path = logPath(c);
    let entry = logs.get(path);
    if (!entry) {
      entry = {
        log: openVassalLog({
          path,
          maxSizeBytes: c.logMaxSizeBytes,
          backups: c.logBackups,
          timestamps: c.logTimestamps,
          logger,
        }),
        users: new Set(),
      };
      logs.set(path, entry);
    } else
      entry.log.reconfigure({
        maxSizeBytes: c.logMaxSizeBytes,
        backups: c.logBackups,
        timestamps: c.logTimestamps,
      });
    entry.users.add(c.name);
    return entry.log;
  };
  /** Logs of disposed vassals, by name, for `emperor logs` after their file is gone (oldest first). */
  const goneLogs = new Map<string, string>();
  /** The runner no longer writes to `only` (a log it moved away from), or to any log (disposed). */
  const releaseLog = (runner: VassalRunner, only?: VassalLog): void => {
    if (only === undefined) {
      goneLogs.delete(runner.name);
      goneLogs.set(runner.name, runner.log.path);
      if (goneLogs.size > MAX_GONE_LOGS) goneLogs.delete(goneLogs.keys().next().value ?? '');
    }
    for (const [path, entry] of logs) {
      if (only !== undefined && entry.log !== only) continue;
      entry.users.delete(runner.name);
      if (entry.users.size === 0) {
        logs.delete(path);
        void entry.log.close();
      }
    }
  };

  // Declared before anything can call back into it (a runner may release sockets during the first scan).
  let closing: Promise<void> | undefined;
  const waiters = new Set<() => void>();
  const listeners = new Set<(runner: VassalRunner) => void>();
  const systemd = systemdNotifier(env, logger);
  let statusTimer: NodeJS.Timeout | undefined;
  // STATUS= for `systemctl status`: at most once a second, never per event (a mass deploy).
  const scheduleStatus = (): void => {
    if (!systemd || statusTimer) return;
    statusTimer = setTimeout(() => {
      statusTimer = undefined;
      systemd.status(summary(reconciler));
    }, 1000);
    statusTimer.unref();
  };
  const reactionListeners = new Set<(name: string, ms: number) => void>();
  const gate = new SpawnGate();
  const emperorId = `${process.pid}.${readStartTime(process.pid) ?? 0n}`;
  const spawn = { baseEnv: { ...env, EMPEROR_ID: emperorId }, emperorUmask: currentUmask() };
  const reconciler: Reconciler = new Reconciler({
    logger,
    now,
    parseOptions: {
      env,
      cpus: availableParallelism(),
      ...(options.lookup ? { lookup: options.lookup } : {}),
      ...(options.uwsgi === undefined ? {} : { uwsgi: options.uwsgi }),
    },
    onReaction: (name, ms) => {
      for (const l of reactionListeners) l(name, ms);
    },
    createRunner: (config) =>
      new VassalRunner(config, {
        logger,
        now,
        spawn,
        gate,
        confinement,
        openLog,
        releaseLog,
        onProcess: (pid, instance) => {
          if (!instance) {
            stateFile.remove(pid);
            return;
          }
          const startTime = readStartTime(pid);
          if (startTime !== undefined) stateFile.add({ pgid: pid, startTime, ...instance });
        },
        onChange: (runner) => {
          for (const w of waiters) w();
          for (const l of listeners) l(runner);
          scheduleStatus();
        },
        onSocketsReleased: (released) => {
          if (closing) return; // shutting down: nothing starts again
          // A vassal that could not bind because the address was in use (this one's, e.g. a
          // renamed file) tries again at once instead of waiting for its retry timer.
          for (const r of reconciler.runners.values()) {
            const v = r.vassal;
            if (r !== released && v.state === 'failed' && v.bindFailure === 'EADDRINUSE')
              r.dispatch({ type: 'control', action: 'start', at: now() });
          }
        },
        onDispose: (runner) => {
          confinement.forget(runner.name);
          reconciler.forget(runner);
          releaseLog(runner);
        },
      }),
  });

  const missing = new Set<string>();
  const source = new DirSource(
    options.vassals.map(parseWatchTarget),
    (scan: Scan) => {
      reconciler.apply(scan);
    },
    (err) => {
      logger.error({ event: 'watch-error', err }, 'watch-error');
    },
    (note) => {
      if (note.event === 'watch-dir-missing') missing.add(note.dir);
      if (note.event === 'watch-dir-found') missing.delete(note.dir);
      logWatchNote(logger, note);
    },
    { tyrant: options.tyrant === true },
  );
  await source.start();
  logger.info(
    { event: 'emperor-ready', vassals: reconciler.runners.size, dirs: options.vassals.join(',') },
    'emperor-ready',
  );
  systemd?.ready(summary(reconciler));

  const allGone = (): Promise<void> =>
    new Promise((done) => {
      const check = (): void => {
        if (reconciler.runners.size === 0) {
          waiters.delete(check);
          done();
        }
      };
      waiters.add(check);
      check();
    });

  return {
    reconciler,
    containment: info,
    escapees: (procs) => confinement.escapees(procs),
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReaction: (listener) => {
      reactionListeners.add(listener);
      return () => reactionListeners.delete(listener);
    },
    rescan: () => source.rescan(),
    missingDirs: () => [...missing].sort(),
    danglingLinks: () => source.danglingLinks(),
    reopenLogs: () => {
      for (const { log } of logs.values()) void log.reopen();
    },
    goneLogPath: (name) => {
      const remembered = goneLogs.get(name);
      if (remembered !== undefined && existsSync(remembered)) return remembered;
      // A vassal removed before this emperor started: only a real vassal name maps to a file name.
      if (vassalNameOf(`${name}.ini`) !== name) return undefined;
      const path = join(options.logDir, `${name}.log`);
      return existsSync(path) ? path : undefined;
    },
    killAll: () => {
      confinement.killAll();
    },
    close: () =>
      (closing ??= (async () => {
        systemd?.stopping();
        clearTimeout(statusTimer);
        reconciler.close();
        await source.close();
        for (const r of [...reconciler.runners.values()]) r.dispatch({ type: 'remove', at: now() });
        await allGone();
        const stray = await confinement.close();
        if (stray.length > 0)
          logger.warn({ event: 'orphans-killed', pids: stray.join(',') }, 'orphans-killed');
        await Promise.allSettled([...logs.values()].map(({ log }) => log.close()));
        await stateFile.close();
        systemd?.close();
        logger.info({ event: 'emperor-stopped' }, 'emperor-stopped');
      })()),
  };
}

function logWatchNote(logger: Logger, note: WatchNote): void {
  switch (note.event) {
    case 'watch-dir-missing':
      logger.warn(
        { event: note.event, dir: note.dir },
        `watched directory ${note.dir} does not exist: its vassals start when it appears`,
      );
      break;
    case 'watch-dir-found':
      logger.info({ event: note.event, dir: note.dir }, `watched directory ${note.dir} appeared: rescanned`);
      break;
    case 'dangling-link':
      logger.warn(
        { vassal: note.name, event: note.event, file: note.file, target: note.target },
        `${note.file} is a symlink to ${note.target}, which does not exist: the vassal starts when it appears`,
      );
      break;
    case 'tyrant-link-ignored':
      logger.warn(
        { vassal: note.name, event: note.event, file: note.file, code: 'EMP_TYRANT_SYMLINK' },
        `${note.file} is a symlink: tyrant mode does not follow vassal files that are symlinks (the link's owner says nothing of who wrote its target); copy the file in [EMP_TYRANT_SYMLINK]`,
      );
      break;
  }
}

/** `3 vassals: 2 running, 1 failed`, for systemd's STATUS=. */
function summary(reconciler: Reconciler): string {
  const counts = new Map<string, number>();
  for (const r of reconciler.runners.values())
    counts.set(r.vassal.state, (counts.get(r.vassal.state) ?? 0) + 1);
  const parts = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => `${n} ${state}`);
  return `${reconciler.runners.size} vassals${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

/** `emperor-<hash of the runtime directory>`: one tree per emperor, the same across its restarts. */
function treeName(runtimeDir: string): string {
  return `emperor-${createHash('sha256').update(resolve(runtimeDir)).digest('hex').slice(0, 12)}`;
}

function currentUmask(): number {
  // process.umask() without an argument is deprecated; set-and-restore is the supported way.
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
}
