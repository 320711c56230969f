// The emperor's own life: wires sources, reconciler and runners, and tears them down once.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { vassalNameOf, type SystemLookup, type VassalConfig } from '@emperor/config';
import { DirSource, type WatchNote, type WatchTarget } from './sources/dir-source.js';
import { SourceSet } from './sources/source-set.js';
import type { SourceUpdate, VassalSource } from './sources/source.js';
import { parseVassalsSpec } from './sources/vassals-spec.js';
import { EtcdSource, type EtcdTarget, type StoreStatus } from './sources/etcd/etcd-source.js';
import { StoreCache } from './sources/etcd/cache.js';
import { EtcdClient, type EtcdClientOptions } from './sources/etcd/client.js';
import { StatusPublisher } from './sources/etcd/status-publisher.js';
import { Reconciler } from './reconciler.js';
import { VassalRunner } from './runner/vassal-runner.js';
import { SpawnGate } from './runner/spawn-gate.js';
import { openVassalLog, type VassalLog } from './os/vassal-log.js';
import { openStateFile, cleanupLeftovers } from './os/state-file.js';
import { readStartTime, type ProcStat } from './os/process-tree.js';
import { setUpContainment, type ContainmentMode } from './os/containment/containment.js';
import { openConfinement, type ContainmentInfo } from './runner/confinement.js';
import { systemdNotifier } from './os/systemd-notify.js';
import { cronClockFrom } from './schedule/cron-schedule.js';
import { RssSampler } from './runner/rss-sampler.js';
import { TouchReload, type TouchPath } from './sources/touch-reload.js';

/** Names of removed vassals whose log path is remembered. */
const MAX_GONE_LOGS = 10_000;

export interface EmperorOptions {
  /** `--vassals` values: directories or file globs inside one directory (vassals-spec.ts). */
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
  /** TLS files and credentials for every `etcd://` source (`run --etcd-*`, docs/fleet.md). */
  readonly etcd?: EtcdSettings;
  /** This emperor's name for `nodes` placement (`run --node-name`); default the host name. */
  readonly nodeName?: string;
  /** Where the last set read from each store is cached (`run --state-dir`); required with etcd. */
  readonly stateDir?: string;
  /** Tyrant mode (`run --tyrant`): each vassal runs as the owner of its file; root only. */
  readonly tyrant?: boolean;
}

export interface EtcdSettings {
  /** PEM files: `cacert` verifies the server; `cert` and `key` are this emperor's client certificate. */
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
  readonly password?: string;
}

export interface Emperor {
  readonly reconciler: Reconciler;
  /** The name `nodes` globs are matched against. */
  readonly nodeName: string;
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
  /** The `touch-reload` paths of a vassal as they are watched (`emperor show`). */
  touchReloads(name: string): TouchPath[];
  /** Each etcd source: connected or not, its revision, whether its set came from the cache. */
  stores(): StoreStatus[];
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
  const specs = options.vassals.map(parseVassalsSpec);
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
  // `touch-reload`: a touched path reloads its vassal as a touched vassal file would, unless the
  // vassal is held stopped (`emperor stop`, or `restart = no` after its exit).
  const touch = new TouchReload(
    (name, path) => {
      const runner = reconciler.runners.get(name);
      if (!runner || runner.disposed || runner.vassal.state === 'stopped' || closing) return;
      logger.info({ vassal: name, event: 'touch-reload', path }, `${path} touched: reloading ${name}`);
      runner.dispatch({ type: 'control', action: 'reload', at: now() });
    },
    (name, path, err) => {
      logger.warn({ vassal: name, event: 'watch-error', path, err }, 'watch-error');
    },
  );
  const emperorId = `${process.pid}.${readStartTime(process.pid) ?? 0n}`;
  const spawn = { baseEnv: { ...env, EMPEROR_ID: emperorId }, emperorUmask: currentUmask() };
  const cronClock = cronClockFrom(env);
  const nodeName = options.nodeName ?? hostname();
  const reconciler: Reconciler = new Reconciler({
    logger,
    now,
    nodeName,
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
        ...(cronClock ? { cronClock } : {}),
        onProcess: (pid, instance) => {
          if (!instance) {
            stateFile.remove(pid);
            return;
          }
          const startTime = readStartTime(pid);
          if (startTime !== undefined) stateFile.add({ pgid: pid, startTime, ...instance });
        },
        onChange: (runner) => {
          if (!runner.disposed) touch.sync(runner.name, runner.vassal.fileConfig.touchReload);
          for (const w of waiters) w();
          for (const l of listeners) l(runner);
          for (const p of publishers) p.schedule();
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
          touch.forget(runner.name);
          confinement.forget(runner.name);
          reconciler.forget(runner);
          releaseLog(runner);
        },
      }),
  });

  // `max-rss`: one sampler for every vassal (it looks only while an instance has a limit).
  const rss = new RssSampler({
    runners: () => reconciler.runners.values(),
    escapees: (procs) => confinement.escapees(procs),
    processesOf: (tag) => confinement.processesOf(tag),
    now,
  });
  rss.start();

  const missing = new Set<string>();
  // One source per run of consecutive directories (one DirSource keeps their first-one-wins
  // order itself), in `--vassals` order: the set merges them with the same rule.
  const groups: (WatchTarget[] | EtcdTarget)[] = [];
  for (const spec of specs) {
    const last = groups.at(-1);
    if (spec.kind === 'etcd') groups.push(spec.target);
    else if (Array.isArray(last)) last.push(spec.target);
    else groups.push([spec.target]);
  }
  const etcdClient = specs.some((s) => s.kind === 'etcd') ? etcdClientOptions(options.etcd) : {};
  const publishers: StatusPublisher[] = [];
  const set = new SourceSet(groups.length, (merged: SourceUpdate) => {
    reconciler.apply(merged);
    for (const p of publishers) p.schedule();
  });
  const dirSources: DirSource[] = [];
  const stores: EtcdSource[] = [];
  const sources: VassalSource[] = groups.map((targets, index) => {
    if (!Array.isArray(targets)) {
      const store = new EtcdSource({
        target: targets,
        client: etcdClient,
        cache: new StoreCache(cachePath(options.stateDir, targets), targets.spec),
        logger,
        onUpdate: set.updater(index),
      });
      stores.push(store);
      publishers.push(
        new StatusPublisher({
          client: new EtcdClient({ ...etcdClient, endpoints: targets.endpoints }),
          prefix: targets.prefix,
          node: nodeName,
          reconciler,
          logger,
        }),
      );
      return store;
    }
    const dirs = new DirSource(
      targets,
      set.updater(index),
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
    dirSources.push(dirs);
    return dirs;
  });
  await Promise.all(sources.map((s) => s.start()));
  set.open();
  logger.info(
    {
      event: 'emperor-ready',
      vassals: reconciler.runners.size,
      dirs: options.vassals.join(','),
      node: nodeName,
    },
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
    nodeName,
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
    rescan: async () => {
      await Promise.all(sources.map((s) => s.rescan()));
    },
    missingDirs: () => [...missing].sort(),
    touchReloads: (name) => touch.list(name),
    stores: () => stores.map((s) => s.status()),
    danglingLinks: () =>
      dirSources.flatMap((d) => d.danglingLinks()).sort((a, b) => (a.file < b.file ? -1 : 1)),
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
        rss.close();
        touch.close();
        reconciler.close();
        // First: the fleet sees this emperor's entries go at once, not after the lease's TTL.
        await Promise.all(publishers.map((p) => p.close()));
        await Promise.all(sources.map((s) => s.close()));
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

/** TLS and credentials, read once at start: a missing file stops the emperor with its name. */
function etcdClientOptions(settings: EtcdSettings = {}): Omit<EtcdClientOptions, 'endpoints'> {
  const read = (what: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw Object.assign(new Error(`--etcd-${what} ${path}: ${(err as Error).message}`), {
        code: 'EMP_CLI_USAGE',
      });
    }
  };
  const ca = read('cacert', settings.cacert);
  const cert = read('cert', settings.cert);
  const key = read('key', settings.key);
  const tls =
    (ca ?? cert ?? key)
      ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }
      : undefined;
  return {
    ...(tls ? { tls } : {}),
    ...(settings.user === undefined
      ? {}
      : { auth: { user: settings.user, password: settings.password ?? '' } }),
  };
}

/** One cache file per cluster and prefix, under the state directory. */
function cachePath(stateDir: string | undefined, target: EtcdTarget): string {
  if (stateDir === undefined) throw new Error('an etcd source needs a state directory for its cache');
  const endpoints = target.endpoints.map((e) => `${e.host}:${e.port}`).join(',');
  const id = createHash('sha256').update(`${endpoints}${target.prefix}`).digest('hex').slice(0, 16);
  return join(stateDir, `etcd-${id}.json`);
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
