// The data of one vassal's state machine. Pure data: the runner owns every OS handle and refers to
// instances by pid. See docs/lifecycle.md for the meaning of each state and event.
import type { CronSpec, VassalConfig, SignalName } from '@emperor/config';

export const VASSAL_STATES = [
  'waiting',
  'starting',
  'running',
  'reloading',
  'stopping',
  'stopped',
  'backoff',
  'failed',
] as const;
export type VassalState = (typeof VASSAL_STATES)[number];

export type InstanceState = 'starting' | 'running' | 'stopping';

/**
 * What a process of the vassal is. `app`: an instance of a generation (readiness, rolling reloads,
 * the vassal's backoff). `attach`: a side daemon (`attach-daemon`): never counts for readiness or
 * generations, restarts with its own backoff, kept across reloads unless its own line changed.
 * App instances are kept in `Vassal.instances`, side processes in `Vassal.sides`, so that the
 * generation rules never see a side process. `cron`: one run of a `cron` / `unique-cron` job
 * (machine/cron-jobs.ts): one-shot, never restarted, its exit recorded on its job. `smart`: a
 * `smart-attach-daemon`, a side daemon that forks itself: its `pid` is the one its pidfile names
 * (the runner tracks it), not the launcher's; otherwise it lives as an `attach` one does.
 */
export type ProcessKind = 'app' | 'attach' | 'cron' | 'smart';

export interface Instance {
  readonly kind: 'app';
  readonly generation: number;
  readonly index: number;
  /** Undefined between the spawn effect and its `spawned` outcome. */
  readonly pid: number | undefined;
  readonly state: InstanceState;
  /** Epoch ms of the spawn. */
  readonly startedAt: number;
  /** From the config of the instance's own generation, which may differ from the vassal's current one. */
  readonly stopSignal: SignalName;
  readonly stopTimeoutMs: number;
  /**
   * Recycling (`max-rss`, `max-lifetime`; machine/recycle.ts). How many times slot `index` of this
   * generation was replaced before this instance: its cgroup leaf is told apart by it. 0 if unset.
   */
  readonly turn?: number | undefined;
  /** A replacement, until it is ready: the pid of the instance it replaces (stopped at its readiness). */
  readonly replaces?: number | undefined;
  /** Being replaced (serving on until its replacement is ready, or stopping to make room): why. */
  readonly recycling?: string | undefined;
}

export type SideState = 'starting' | 'running' | 'stopping' | 'backoff';

/** A side process of the vassal: one `attach-daemon` line, or one run of a cron job. */
export interface SideProcess {
  readonly kind: 'attach' | 'cron' | 'smart';
  /**
   * `attach-<n>`: its cgroup leaf and EMPEROR_ATTACH (and an attach-daemon's log prefix). Unique
   * among the vassal's side processes, whatever their kind.
   */
  readonly index: number;
  /** A cron run: the `id` of its job in `Vassal.crons`. */
  readonly job?: number;
  /** A `smart-attach-daemon`: the pidfile that names its daemon. */
  readonly pidfile?: string;
  /** Its config line (run with `/bin/sh -c`): a reload keeps the process unless this line is gone. */
  readonly command: string;
  /** Undefined between the spawn effect and its `spawned` outcome, and in `backoff`. */
  readonly pid: number | undefined;
  readonly state: SideState;
  /** Epoch ms of the last spawn. */
  readonly startedAt: number;
  /** Times it was started again after dying. */
  readonly restarts: number;
  /** Its own consecutive quick exits: the exponent of its next backoff delay. */
  readonly backoffStep: number;
  readonly stopTimeoutMs: number;
}

/** One `cron` / `unique-cron` line, scheduled while the vassal runs (machine/cron-jobs.ts). */
export interface CronJob {
  /** `cron-<id>`: its runs' log prefix. Kept while its line is unchanged. */
  readonly id: number;
  readonly spec: CronSpec;
  /** Epoch ms of the last run started (or skipped, for `unique-cron`: see `skipped`). */
  readonly lastStartAt: number | undefined;
  /** How its last run ended (`reason`: it could not be spawned). */
  readonly lastExit: (ExitInfo & { readonly reason?: string }) | undefined;
  /** `unique-cron` runs skipped because the previous one was still going. */
  readonly skipped: number;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: SignalName | null;
  /** Epoch ms. */
  readonly at: number;
}

/** Why the vassal is stopping: decides what follows once the last instance is gone. */
export type StopGoal =
  | { readonly kind: 'hold' } // `emperor stop`: then `stopped`
  | { readonly kind: 'remove' } // file deleted: then dispose
  | { readonly kind: 'restart'; readonly config: VassalConfig } // reload = restart, `emperor restart`: then start with this config
  | { readonly kind: 'fail'; readonly reason: string } // cannot start: then `failed`
  | { readonly kind: 'sleep' } // on-demand idle: then `waiting`
  | { readonly kind: 'exit' }; // restart = no and the app exited: then `stopped`

export interface Vassal {
  readonly name: string;
  readonly state: VassalState;
  /** The config of the current generation (or of the next start). */
  readonly config: VassalConfig;
  /**
   * The file's config as last read: what a reload, restart, start or retry applies. Differs from
   * `config` while the generation of an older version serves because the file's could not start.
   */
  readonly fileConfig: VassalConfig;
  /**
   * During a rolling reload, the config of the generation still serving: restored if the new
   * generation is abandoned, so a later restart never runs the rejected version.
   */
  readonly servingConfig: VassalConfig | undefined;
  /** The generation the vassal serves or is starting; 0 before the first start. */
  readonly generation: number;
  /** The highest generation number ever used: an abandoned reload never reuses its number. */
  readonly lastGeneration: number;
  /** Every live app process, of any generation, including those being stopped. */
  readonly instances: readonly Instance[];
  /** Side processes (`attach-daemon`, cron runs), live, being stopped or waiting out their backoff. */
  readonly sides: readonly SideProcess[];
  /** Cron jobs scheduled (from the first generation until the vassal stops). */
  readonly crons: readonly CronJob[];
  /** Instances restarted after exiting by themselves, over the vassal's life. */
  readonly restarts: number;
  /** Consecutive quick exits: the exponent of the next backoff delay. */
  readonly backoffStep: number;
  readonly backoffUntil: number | undefined;
  readonly lastExit: ExitInfo | undefined;
  /** Why the vassal is `failed`, or why the last reload was abandoned. */
  readonly reason: string | undefined;
  readonly stopGoal: StopGoal | undefined;
  /** The owned sockets of `config` are bound (they stay bound across generations and idle periods). */
  readonly bound: boolean;
  /**
   * The errno code (`EADDRINUSE`) of the bind that made the vassal `failed`, until its next start:
   * the emperor retries such a vassal at once when another one releases its sockets.
   */
  readonly bindFailure: string | undefined;
  /** A `bind` effect is out; its `bound` or `bind-failed` outcome continues the start. */
  readonly binding: boolean;
  /** On-demand with `idle`: when a probe last saw a client (epoch ms). */
  readonly busyAt: number | undefined;
  /** Instances replaced by recycling (`max-rss`, `max-lifetime`), over the vassal's life. */
  readonly recycles: number;
  /** The last recycle: why and when (epoch ms). */
  readonly lastRecycle: { readonly reason: string; readonly at: number } | undefined;
  /** A replacement failed to start: no recycle is tried before this (epoch ms). */
  readonly recycleRetryAt: number | undefined;
}

/** A named timer of one vassal; the runner keys them by `timerKey`. */
export type Timer =
  | { readonly kind: 'backoff' }
  | { readonly kind: 'retry' }
  | { readonly kind: 'stop-timeout'; readonly pid: number }
  | { readonly kind: 'ready-timeout'; readonly pid: number }
  | { readonly kind: 'ready-delay'; readonly pid: number }
  /** On-demand with `idle`: time to look for clients again. */
  | { readonly kind: 'idle' }
  /** `watchdog`: the instance sent no `WATCHDOG=1` in time. */
  | { readonly kind: 'watchdog'; readonly pid: number }
  /** A side process's own backoff is over: start it again. */
  | { readonly kind: 'side-backoff'; readonly index: number }
  /** A run of cron job `index` (its `id`) is due on the wall clock (armed by `schedule-cron`). */
  | { readonly kind: 'cron'; readonly index: number }
  /** `max-lifetime` (less its jitter) is up for this instance: replace it. */
  | { readonly kind: 'lifetime'; readonly pid: number };

export function timerKey(t: Timer): string {
  if ('pid' in t) return `${t.kind}:${t.pid}`;
  return 'index' in t ? `${t.kind}:${t.index}` : t.kind;
}

export type ControlAction = 'start' | 'stop' | 'restart' | 'reload';

export type VassalEvent =
  /** The file appeared (reconciler) or `emperor start`. */
  | { readonly type: 'start'; readonly at: number }
  /** The file changed (content, or touched with the same content). */
  | {
      readonly type: 'update';
      readonly config: VassalConfig;
      readonly at: number;
      /**
       * Why `config` cannot be spawned (program not on PATH, chdir, user, env-file), as the runner
       * found when it took the event: such a reload leaves the serving generation alone.
       */
      readonly unrunnable?: string | undefined;
    }
  /** The file is gone. */
  | { readonly type: 'remove'; readonly at: number }
  | {
      readonly type: 'control';
      readonly action: ControlAction;
      readonly at: number;
      /** As for `update`, about the file's config (`fileConfig`). */
      readonly unrunnable?: string | undefined;
    }
  | {
      readonly type: 'spawned';
      /** Omitted for `app`; a side process's `generation` is 0 and `index` its own. */
      readonly kind?: ProcessKind;
      readonly generation: number;
      readonly index: number;
      readonly pid: number;
      readonly at: number;
    }
  | {
      readonly type: 'spawn-failed';
      readonly kind?: ProcessKind;
      readonly generation: number;
      readonly index: number;
      readonly reason: string;
      readonly at: number;
    }
  | { readonly type: 'ready'; readonly pid: number; readonly at: number }
  /** `WATCHDOG=1` from an instance (sd_notify, or the SDK's heartbeat on the fd channel). */
  | { readonly type: 'heartbeat'; readonly pid: number; readonly at: number }
  /** Outcomes of a `bind` effect. */
  | { readonly type: 'bound'; readonly at: number }
  | {
      readonly type: 'bind-failed';
      readonly reason: string;
      /** The errno code of the failure (`EADDRINUSE`, `EACCES`, ...), when the OS gave one. */
      readonly code?: string | undefined;
      readonly at: number;
    }
  /** A client waits on a socket of a `waiting` vassal. */
  | { readonly type: 'activate'; readonly at: number }
  /** Outcome of a `probe-idle` effect: whether any client is connected or waiting. */
  | { readonly type: 'idle-probe'; readonly busy: boolean; readonly at: number }
  | {
      readonly type: 'exited';
      readonly pid: number;
      readonly code: number | null;
      readonly signal: SignalName | null;
      readonly at: number;
    }
  | { readonly type: 'timer'; readonly timer: Timer; readonly at: number }
  /**
   * The emperor's sampler saw this instance over `max-rss` for two samples in a row (`reason` says
   * by how much): replace it, one instance of the vassal at a time.
   */
  | { readonly type: 'recycle'; readonly pid: number; readonly reason: string; readonly at: number };

export type VassalEventType = VassalEvent['type'];

export type Effect =
  | {
      readonly type: 'spawn';
      readonly generation: number;
      readonly index: number;
      readonly config: VassalConfig;
      /** A replacement (recycling): `Instance.turn`. */
      readonly turn?: number | undefined;
    }
  /** A side process: `/bin/sh -c command` with the vassal's user, chdir, environment and log. */
  | {
      readonly type: 'spawn-side';
      readonly kind: 'attach' | 'cron' | 'smart';
      readonly index: number;
      /** A cron run: its job's `id` (its log prefix is `cron-<job>`). */
      readonly job?: number;
      /**
       * `smart`: the daemon's pidfile. A live daemon it names is adopted; else the command is
       * launched and its `spawned` outcome comes once the pidfile names the daemon it forked.
       */
      readonly pidfile?: string;
      readonly command: string;
      readonly config: VassalConfig;
    }
  /** Fire `timer` (kind `cron`) at each run of `spec` on the wall clock, until it is cancelled. */
  | {
      readonly type: 'schedule-cron';
      readonly timer: Extract<Timer, { kind: 'cron' }>;
      readonly spec: CronSpec;
    }
  /** To the main process only (stop-signal, or a `signal:` reload). */
  | { readonly type: 'signal'; readonly pid: number; readonly signal: SignalName }
  /** SIGKILL to whatever is left of the instance's process group. */
  | { readonly type: 'kill-group'; readonly pid: number }
  | { readonly type: 'arm'; readonly timer: Timer; readonly ms: number }
  /** Bind the owned sockets of `config` (keeping those already bound at the same address), then answer `bound` or `bind-failed`. */
  | { readonly type: 'bind'; readonly config: VassalConfig }
  /** Close the owned sockets: clients are refused until the next start. */
  | { readonly type: 'close-sockets' }
  /** Answer `activate` once a client waits on any owned socket. */
  | { readonly type: 'watch-sockets' }
  /** Answer `idle-probe`. */
  | { readonly type: 'probe-idle' }
  | { readonly type: 'cancel'; readonly timer: Timer }
  /** One lifecycle line in the emperor's log (docs/logging.md). */
  | {
      readonly type: 'log';
      readonly level: 'info' | 'warn' | 'error';
      readonly event: string;
      readonly fields: LogFields;
    }
  /** The vassal is gone: release its log and forget it. */
  | { readonly type: 'dispose' };

export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Transition {
  readonly vassal: Vassal;
  readonly effects: readonly Effect[];
}
