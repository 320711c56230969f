// Performs one vassal's effects and feeds their outcomes back as events. Everything with an OS
// handle for this vassal (processes, timers, its log) is held here; the machine stays pure.
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { closeRawFd, setGroupPriority } from '@emperor/native';
import type { Logger } from 'pino';
import type { VassalConfig } from '@emperor/config';
import { createVassal, transition } from '../machine/transition.js';
import { timerKey, type Effect, type Vassal, type VassalEvent } from '../machine/types.js';
import { NO_CHANNELS, spawnInstance, type SpawnOptions } from './spawn-instance.js';
import { OwnedSockets } from './owned-sockets.js';
import { precheck } from './precheck.js';
import type { SpawnGate } from './spawn-gate.js';
import { NotifyChannel, type NotifyMessage } from './notify-channel.js';
import type { Cell, Confinement } from './confinement.js';
import { readStat } from '../os/process-tree.js';
import type { VassalLog } from '../os/vassal-log.js';
import { CronTimer, type TimerClock } from '../schedule/cron-schedule.js';
import { checkPidfile, type PidfileProcess } from '../os/pidfile.js';
import { watchPid } from './pid-watch.js';
import { adoptedCell } from './adopted-cell.js';

export interface RunnerDeps {
  readonly logger: Logger;
  readonly now: () => number;
  readonly spawn: SpawnOptions;
  /** Shared by every runner: bounds how many spawns run per event-loop turn. */
  readonly gate: SpawnGate;
  /** Where instances live and how all of their processes are killed (a cgroup each, or the subreaper's view). */
  readonly confinement: Confinement;
  /** Opens (or reuses) the log file of a vassal. */
  readonly openLog: (config: VassalConfig) => VassalLog;
  /** This runner stopped writing to `log` (its last instance there exited after a move to another path). */
  readonly releaseLog?: (runner: VassalRunner, log: VassalLog) => void;
  /** Told of every process group the vassal starts (with its identity) or loses (undefined), for the state file. */
  readonly onProcess: (
    pid: number,
    instance: { vassal: string; instance: number; generation: number } | undefined,
  ) => void;
  /** Told after each handled event: status readers and `--wait` look again. */
  readonly onChange: (runner: VassalRunner) => void;
  readonly onDispose: (runner: VassalRunner) => void;
  /** Told when this vassal closed its owned sockets: a vassal waiting for one of the addresses may retry now. */
  readonly onSocketsReleased?: (runner: VassalRunner) => void;
  /** The clock cron jobs run on (the wall clock unless a test speeds it up). */
  readonly cronClock?: TimerClock;
}

export class VassalRunner {
  #vassal: Vassal;
  readonly #deps: RunnerDeps;
  readonly #queue: VassalEvent[] = [];
  #draining = false;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Cron jobs' timers on the wall clock, by `timerKey`. */
  readonly #crons = new Map<string, CronTimer>();
  #log: VassalLog;
  /** The log keys the current log was opened with (the vassal's config moves on before a spawn). */
  #logKey: string;
  /** Live instances writing to each log: an old path is released once its last writer is gone. */
  readonly #logWriters = new Map<VassalLog, number>();
  /** The `log` path of the open log. */
  #logPath: string | undefined;
  /** The config #syncLog last looked at. */
  #syncedConfig: VassalConfig | undefined;
  #disposed = false;
  readonly #sockets = new OwnedSockets();
  /** sd_notify `STATUS=` of each instance, by pid. */
  readonly #status = new Map<number, string>();
  /** Instances booting at a lower CPU priority beside a serving generation, by pid (= pgid). */
  readonly #booting = new Set<number>();
  /** Second passes of a priority restore, by pid (see #restorePriorities). */
  readonly #restoring = new Map<number, NodeJS.Timeout>();
  /** Each live instance's place (cgroup or process group and orphans), by main pid, until all of it is gone. */
  readonly #cells = new Map<number, Cell>();
  /** Main processes that have exited (and been reaped) while the rest of their instance is killed. */
  readonly #exited = new Set<number>();
  /** Smart-attach-daemons being watched (not our children), by pid: stops the watch. */
  readonly #watched = new Map<number, () => void>();

  constructor(config: VassalConfig, deps: RunnerDeps) {
    this.#deps = deps;
    this.#vassal = createVassal(config);
    this.#log = deps.openLog(config);
    this.#logKey = logKey(config);
    this.#logPath = config.log;
  }

  get name(): string {
    return this.#vassal.name;
  }

  get vassal(): Vassal {
    return this.#vassal;
  }

  get log(): VassalLog {
    return this.#log;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** The next run of cron job `id`, as its timer reckons it (undefined once unscheduled). */
  cronNext(id: number): Date | undefined {
    return this.#crons.get(timerKey({ kind: 'cron', index: id }))?.next;
  }

  /** The last `STATUS=` an instance sent, if any. */
  statusOf(pid: number): string | undefined {
    return this.#status.get(pid);
  }

  /** Queues an event; events are handled one at a time, in order, never re-entrantly. */
  dispatch(event: VassalEvent): void {
    if (this.#disposed) return;
    this.#queue.push(event);
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let e = this.#queue.shift(); e; e = this.#queue.shift()) this.#handle(e);
    } finally {
      this.#draining = false;
    }
    if (this.#booting.size > 0) this.#restorePriorities();
    this.#syncLog();
    this.#deps.onChange(this);
  }

  #handle(event: VassalEvent): void {
    try {
      const t = transition(this.#vassal, this.#checked(event));
      this.#vassal = t.vassal;
      for (const effect of t.effects) {
        try {
          this.#perform(effect);
        } catch (err) {
          // The remaining effects still run: a lost `arm` or `spawn` would leave the vassal stuck.
          this.#deps.logger.error(
            { vassal: this.name, event: 'internal-error', err, effect: effect.type },
            'internal-error',
          );
        }
      }
    } catch (err) {
      // One vassal's bug never takes the emperor down.
      this.#deps.logger.error(
        { vassal: this.name, event: 'internal-error', err, got: event.type },
        'internal-error',
      );
    }
  }

  /**
   * File and control events that may replace the serving generation say whether the config they
   * would start can be spawned now: checked before anything is stopped, not found out after.
   */
  #checked(event: VassalEvent): VassalEvent {
    const { baseEnv } = this.#deps.spawn;
    if (event.type === 'update') return { ...event, unrunnable: precheck(event.config, baseEnv) };
    if (event.type === 'control' && event.action !== 'stop')
      return { ...event, unrunnable: precheck(this.#vassal.fileConfig, baseEnv) };
    return event;
  }

  #perform(effect: Effect): void {
    const { logger, now } = this.#deps;
    switch (effect.type) {
      case 'spawn':
      case 'spawn-side':
        this.#deps.gate.run(() => {
          this.#spawn(effect);
        });
        return;
      case 'signal':
        // A reaped main process's pid may belong to another process already.
        if (this.#exited.has(effect.pid)) return;
        this.#lowerIfRetiring(effect.pid);
        try {
          process.kill(effect.pid, effect.signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
        return;
      case 'kill-group':
        // Only a live cell: once an instance is gone its pid (and group number) may be reused.
        this.#cells.get(effect.pid)?.kill();
        return;
      case 'arm': {
        const key = timerKey(effect.timer);
        clearTimeout(this.#timers.get(key));
        const timer = effect.timer;
        this.#timers.set(
          key,
          setTimeout(() => {
            this.#timers.delete(key);
            this.dispatch({ type: 'timer', timer, at: now() });
          }, effect.ms),
        );
        return;
      }
      case 'cancel': {
        const key = timerKey(effect.timer);
        clearTimeout(this.#timers.get(key));
        this.#timers.delete(key);
        this.#crons.get(key)?.stop();
        this.#crons.delete(key);
        return;
      }
      case 'schedule-cron': {
        const key = timerKey(effect.timer);
        this.#crons.get(key)?.stop();
        const timer = effect.timer;
        // The emperor's own time zone (croner reads the wall clock as local time).
        const cron = new CronTimer(
          effect.spec,
          () => {
            this.dispatch({ type: 'timer', timer, at: now() });
          },
          this.#deps.cronClock ? { clock: this.#deps.cronClock } : {},
        );
        this.#crons.set(key, cron);
        cron.start();
        return;
      }
      case 'log':
        logger[effect.level]({ vassal: this.name, event: effect.event, ...effect.fields }, effect.event);
        return;
      case 'dispose':
        this.#dispose();
        return;
      case 'bind':
        try {
          this.#sockets.bind(effect.config);
          this.#queue.push({ type: 'bound', at: now() });
        } catch (err) {
          const { message, code } = err as NodeJS.ErrnoException;
          this.#queue.push({ type: 'bind-failed', reason: message, code, at: now() });
        }
        return;
      case 'close-sockets': {
        const had = this.#sockets.addresses.length > 0;
        this.#sockets.close();
        if (had) this.#deps.onSocketsReleased?.(this);
        return;
      }
      case 'watch-sockets':
        this.#sockets.watch(() => {
          this.dispatch({ type: 'activate', at: now() });
        });
        return;
      case 'probe-idle':
        this.#queue.push({ type: 'idle-probe', busy: this.#sockets.busy(), at: now() });
        return;
    }
  }

  /** Outcomes go through dispatch: queued when called while draining, handled at once when deferred by the gate. */
  #spawn(effect: Extract<Effect, { type: 'spawn' | 'spawn-side' }>): void {
    const { index, config } = effect;
    // One spawn path for every kind of process: a side process differs only in its argv, its
    // tags, its channels (none) and its cgroup leaf.
    const side = effect.type === 'spawn-side';
    const generation = side ? 0 : effect.generation;
    const kind = side ? effect.kind : undefined;
    const failed = (reason: string): void => {
      this.dispatch({
        type: 'spawn-failed',
        ...(kind ? { kind } : {}),
        generation,
        index,
        reason,
        at: this.#deps.now(),
      });
    };
    const wanted = side
      ? this.#vassal.sides.find((d) => d.index === index && d.pid === undefined)
      : this.#vassal.instances.find(
          (i) => i.generation === generation && i.index === index && i.pid === undefined,
        );
    if (this.#disposed || wanted?.state !== 'starting') {
      // Stopped while it waited at the gate: answer without spawning.
      failed('stopped before it was spawned');
      return;
    }
    if (logKey(config) !== this.#logKey) {
      const previous = this.#log;
      this.#log = this.#deps.openLog(config);
      // Nobody writes to the old file any more (a restart stopped them first): let it go now.
      if (previous !== this.#log && !this.#logWriters.has(previous)) this.#deps.releaseLog?.(this, previous);
      this.#logKey = logKey(config);
      this.#logPath = config.log;
    }
    const smart =
      effect.type === 'spawn-side' && effect.kind === 'smart' ? (effect.pidfile ?? '') : undefined;
    if (smart !== undefined) {
      // Started only when its pidfile names no live daemon: one that runs already is adopted.
      const found = checkPidfile(smart);
      if (found.ok) {
        const { pid } = found.process;
        const cell = adoptedCell(found.process);
        this.#cells.set(pid, cell);
        this.#deps.logger.info(
          { vassal: this.name, event: 'smart-adopted', pid, pidfile: smart, attach: index },
          'smart-adopted',
        );
        this.#trackSmart(found.process, cell, undefined, config);
        this.dispatch({ type: 'spawned', kind: 'smart', generation, index, pid, at: this.#deps.now() });
        return;
      }
    }
    let notify: NotifyChannel | undefined;
    try {
      // libsystemd clients send WATCHDOG=1 only to a NOTIFY_SOCKET, so `watchdog` needs one too.
      notify =
        !side && (config.ready.kind === 'notify' || config.watchdogMs !== undefined)
          ? NotifyChannel.open()
          : undefined;
    } catch (err) {
      failed(`cannot open NOTIFY_SOCKET: ${(err as Error).message}`);
      return;
    }
    // Booting beside a serving generation (a rolling reload), a new instance must not take the
    // CPU the serving ones answer with: it starts at a lower priority until it is ready.
    const beside = !side && CAN_RESTORE_PRIORITY && this.#servingBeside(generation);
    // Every side process (an attach-daemon, a cron run) is tagged and contained as `attach-<index>`.
    const turn = side ? undefined : effect.turn;
    const id = { ...(side ? { kind: 'attach' as const } : {}), generation, index, ...(turn ? { turn } : {}) };
    let cell: Cell;
    try {
      cell = this.#deps.confinement.enter({ vassal: config.name, ...id });
    } catch (err) {
      notify?.close();
      failed(`cannot create its cgroup: ${(err as Error).message}`);
      return;
    }
    let result: ReturnType<typeof spawnInstance>;
    try {
      result = spawnInstance(
        config,
        // uWSGI runs an attach-daemon line with /bin/sh -c too.
        { id, argv: side ? ['/bin/sh', '-c', effect.command] : config.argv },
        this.#deps.spawn,
        side
          ? NO_CHANNELS
          : {
              fds: this.#sockets.fds,
              fdNames: this.#sockets.names(config.name),
              notifySocket: notify?.address,
              notifyFd: config.ready.kind === 'fd',
            },
        beside ? Math.min(19, getPriority() + BOOT_NICE) : 0,
        cell.cgroupFd,
      );
    } catch (err) {
      // The spawn itself failed (EAGAIN, ENOMEM): an outcome like any other, never a stuck instance.
      result = { ok: false, reason: `cannot spawn: ${(err as Error).message}` };
    }
    const at = this.#deps.now();
    cell.spawned(result.ok ? result.instance.pid : undefined);
    if (!result.ok) {
      notify?.close();
      failed(result.reason);
      return;
    }
    const { pid, stdout, stderr } = result.instance;
    // A smart daemon's cell is known by the daemon's pid, once its pidfile names it.
    if (smart === undefined) this.#cells.set(pid, cell);
    if (beside) this.#booting.add(pid);
    // A side daemon's lines are told apart by their prefix: `shop/attach-0` beside `shop/0`.
    const label = !side
      ? `${config.name}/${index}`
      : effect.kind === 'cron'
        ? `${config.name}/cron-${effect.job ?? index}`
        : `${config.name}/attach-${index}`;
    const log = this.#log;
    // The instance runs: whatever happens to its output, it is tracked below and stopped with
    // the vassal. A pipe that cannot be read (it never could so far) is closed, not leaked.
    for (const [fd, source] of [
      [stdout, 'stdout'],
      [stderr, 'stderr'],
    ] as const) {
      try {
        log.attach(fd, label, source, side);
      } catch (err) {
        if (typeof fd === 'number') closeRawFd(fd);
        this.#deps.logger.error(
          { vassal: this.name, event: 'internal-error', err, pid, source },
          'internal-error',
        );
      }
    }
    this.#logWriters.set(log, (this.#logWriters.get(log) ?? 0) + 1);
    const onMessage = (m: NotifyMessage): void => {
      this.#onNotify(pid, m);
    };
    // The sender the kernel names must be the instance or in its process group. One that has
    // already exited (systemd-notify run by a non-root user reports its own pid) cannot be
    // placed: it is believed only if it ran as the instance's user, which other users cannot fake.
    const instanceUid = config.user?.uid ?? process.getuid?.();
    notify?.listen(onMessage, (sender, senderUid) => {
      if (sender === undefined || sender <= 0) return false;
      if (sender === pid) return true;
      const stat = readStat(sender);
      if (stat) return stat.pgid === pid;
      return senderUid !== undefined && senderUid === instanceUid;
    });
    if (result.instance.notify) NotifyChannel.readLines(result.instance.notify, onMessage);
    // The state file has no kind: a side daemon is recorded as generation -1 (its group is killed alike).
    this.#deps.onProcess(pid, { vassal: config.name, instance: index, generation: side ? -1 : generation });
    // The launcher is expected to fork the daemon and exit. Its pidfile is looked for from the
    // launch on, so a daemon that stays in the foreground and writes its own pid is found too.
    let launcher: { code: number | null; signal: string | null } | undefined;
    if (smart !== undefined) {
      void this.#awaitPidfile(smart, at, config.readyTimeoutMs, () => launcher).then((found) => {
        if (found.ok) {
          this.#cells.set(found.process.pid, cell);
          this.#trackSmart(found.process, cell, log, config);
          const { pid: daemon } = found.process;
          this.dispatch({
            type: 'spawned',
            kind: 'smart',
            generation,
            index,
            pid: daemon,
            at: this.#deps.now(),
          });
          return;
        }
        // Nothing of it may stay: a launcher that still runs is stopped with its cell.
        void cell.end(MIN_END_MS).then(() => {
          this.#logWriterGone(log);
          failed(found.why);
        });
      });
    }
    result.instance.onExit((code, signal) => {
      if (smart !== undefined) {
        // Its cell (cgroup, or tagged orphans) stays: the daemon it forked runs in it.
        launcher = { code, signal };
        this.#deps.onProcess(pid, undefined);
        return;
      }
      const exitedAt = this.#deps.now();
      this.#exited.add(pid);
      notify?.close();
      this.#status.delete(pid);
      this.#booting.delete(pid);
      // systemd's KillMode=mixed: the main process has exited, so whatever it left (a setsid'd
      // daemon, a worker) is killed, and the instance is gone only once none of it runs.
      void cell.end(Math.max(MIN_END_MS, config.stopTimeoutMs)).then((left) => {
        if (left.length > 0)
          this.#deps.logger.warn(
            { vassal: this.name, event: 'instance-not-empty', pid, left: left.join(',') },
            'instance-not-empty',
          );
        this.#cells.delete(pid);
        this.#exited.delete(pid);
        this.#logWriterGone(log);
        this.#deps.onProcess(pid, undefined);
        this.dispatch({ type: 'exited', pid, code, signal, at: exitedAt });
      });
    });
    if (smart === undefined)
      this.dispatch({ type: 'spawned', ...(kind ? { kind } : {}), generation, index, pid, at });
  }

  /**
   * The daemon a smart launcher started: the live process its pidfile names, started since the
   * launch. A daemon may write the pidfile after its launcher exits: looked for up to
   * SMART_PIDFILE_MS after a clean exit, once after a failed one. A launcher that neither exits
   * nor names a daemon within `ready-timeout` is a failed start, not one that starts forever.
   */
  async #awaitPidfile(
    pidfile: string,
    launchedAt: number,
    readyTimeoutMs: number,
    launcher: () => { code: number | null; signal: string | null } | undefined,
  ): Promise<{ ok: true; process: PidfileProcess } | { ok: false; why: string }> {
    const started = Date.now();
    let exitedAt: number | undefined;
    for (;;) {
      const found = checkPidfile(pidfile, launchedAt);
      if (found.ok || this.#disposed) return found;
      const exit = launcher();
      const now = Date.now();
      if (exit) {
        exitedAt ??= now;
        if (exit.code !== 0 || now - exitedAt >= SMART_PIDFILE_MS) {
          const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code ?? '?'}`;
          return { ok: false, why: `its launcher ${how} and ${found.why}` };
        }
      } else if (now - started >= readyTimeoutMs) {
        return {
          ok: false,
          why:
            `its launcher still runs after ready-timeout (${readyTimeoutMs / 1000} s) and ${found.why}: ` +
            'a smart-attach-daemon command must fork the daemon and exit, or the daemon write its own ' +
            'pid to the pidfile; a program that stays in the foreground is an attach-daemon',
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Watches a smart daemon (not our child): once it is gone, so is its cell, then `exited`. */
  #trackSmart(p: PidfileProcess, cell: Cell, log: VassalLog | undefined, config: VassalConfig): void {
    const { pid } = p;
    this.#watched.set(
      pid,
      watchPid(pid, p.startTime, () => {
        this.#watched.delete(pid);
        this.#exited.add(pid);
        const exitedAt = this.#deps.now();
        void cell.end(Math.max(MIN_END_MS, config.stopTimeoutMs)).then(() => {
          this.#cells.delete(pid);
          this.#exited.delete(pid);
          if (log) this.#logWriterGone(log);
          // Not our child: its exit status is its parent's (init's) to know.
          this.dispatch({ type: 'exited', pid, code: null, signal: null, at: exitedAt });
        });
      }),
    );
  }

  /**
   * New size, backup or timestamp settings for the same file apply at once, even without a spawn
   * (a `signal:` reload keeps its processes); a new path waits for the next generation.
   */
  #syncLog(): void {
    const c = this.#vassal.config;
    // Runs after every event: most events leave the config object as it was.
    if (c === this.#syncedConfig) return;
    this.#syncedConfig = c;
    const key = logKey(c);
    if (key === this.#logKey || c.log !== this.#logPath || this.#disposed) return;
    this.#log.reconfigure({
      maxSizeBytes: c.logMaxSizeBytes,
      backups: c.logBackups,
      timestamps: c.logTimestamps,
    });
    this.#logKey = key;
  }

  #logWriterGone(log: VassalLog): void {
    const left = (this.#logWriters.get(log) ?? 1) - 1;
    if (left > 0) {
      this.#logWriters.set(log, left);
      return;
    }
    this.#logWriters.delete(log);
    if (log !== this.#log && !this.#disposed) this.#deps.releaseLog?.(this, log);
  }

  /** Whether another generation than `generation` has an instance serving. */
  #servingBeside(generation: number): boolean {
    return this.#vassal.instances.some((i) => i.generation !== generation && i.state === 'running');
  }

  /**
   * `retire-nice`: an instance stopped while another generation serves (the old one of a rolling
   * reload, or an abandoned new one) drains and exits at a lower priority, so that its exit work
   * (an interpreter's teardown) does not take the CPU the serving generation answers with. Not a
   * default: an app that keeps serving keep-alive clients while it drains would starve them on a
   * saturated machine. It never gets the priority back, so this needs no CAP_SYS_NICE.
   */
  #lowerIfRetiring(pid: number): void {
    const nice = this.#vassal.config.retireNice;
    if (nice === 0) return;
    const inst = this.#vassal.instances.find((i) => i.pid === pid);
    if (inst?.state !== 'stopping' || !this.#servingBeside(inst.generation)) return;
    try {
      setGroupPriority(pid, Math.min(19, getPriority() + nice));
    } catch {
      // EPERM: another user's instance and no CAP_SYS_NICE. It stops at full priority.
    }
  }

  /** A booting instance gets the emperor's priority back once ready, or once nothing else serves. */
  #restorePriorities(): void {
    for (const pid of this.#booting) {
      const inst = this.#vassal.instances.find((i) => i.pid === pid);
      if (inst?.state === 'starting' && this.#servingBeside(inst.generation)) continue;
      this.#booting.delete(pid);
      this.#restoreGroup(pid);
      // A child the instance was forking while the group was walked keeps the lower priority: it
      // copied its parent's before the walk and joined the group after it. Preforking servers
      // fork right at READY=1 (uWSGI's master), and such a worker, starved under load, served
      // slowly and was still starting (its SIGHUP ignored) when a stop came. A second pass, once
      // any fork in flight has ended, gives it the emperor's priority too.
      clearTimeout(this.#restoring.get(pid));
      const again = setTimeout(() => {
        this.#restoring.delete(pid);
        if (!this.#disposed && this.#cells.has(pid)) this.#restoreGroup(pid);
      }, PRIORITY_SECOND_PASS_MS);
      again.unref();
      this.#restoring.set(pid, again);
    }
  }

  #restoreGroup(pid: number): void {
    try {
      setGroupPriority(pid, getPriority()); // the emperor's own now; false: the group is gone already
    } catch (err) {
      // It keeps running, slower than it should.
      this.#deps.logger.warn(
        { vassal: this.name, event: 'priority-not-restored', pid, err },
        'priority-not-restored',
      );
    }
  }

  #onNotify(pid: number, m: NotifyMessage): void {
    if (m.status !== undefined) this.#status.set(pid, m.status);
    if (m.ready) this.dispatch({ type: 'ready', pid, at: this.#deps.now() });
    if (m.watchdog) this.dispatch({ type: 'heartbeat', pid, at: this.#deps.now() });
  }

  #dispose(): void {
    this.#disposed = true;
    this.#sockets.close();
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const t of this.#restoring.values()) clearTimeout(t);
    this.#restoring.clear();
    for (const c of this.#crons.values()) c.stop();
    this.#crons.clear();
    for (const stop of this.#watched.values()) stop();
    this.#watched.clear();
    this.#deps.onDispose(this);
  }
}

/**
 * Instances normally run at the emperor's own nice value; booting beside a serving generation,
 * BOOT_NICE more. Only CAP_SYS_NICE raises a priority back (root in a default container lacks
 * it), so an emperor without it does not lower one at all. Retiring beside a serving generation,
 * `retire-nice` more (never raised back).
 */
const BOOT_NICE = 10;
/** When a restored priority is set again, for the children forked while it was first set. */
const PRIORITY_SECOND_PASS_MS = 500;
/** How long a smart daemon's pidfile may take to name it after its launcher exited. */
const SMART_PIDFILE_MS = 10_000;
/** How long the rest of an instance may take to die after SIGKILL, at least (else its stop-timeout). */
const MIN_END_MS = 2000;
const CAN_RESTORE_PRIORITY = hasCapability(23); // CAP_SYS_NICE

function hasCapability(bit: number): boolean {
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** `log`, `log-max-size`, `log-backups`, `log-timestamps`: a change of any reopens or reconfigures the log. */
function logKey(c: VassalConfig): string {
  return JSON.stringify([c.log, c.logMaxSizeBytes, c.logBackups, c.logTimestamps]);
}
