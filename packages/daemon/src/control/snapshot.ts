// `GET /v1/status`: a read-only picture of every vassal, in the stable schema of SPEC §5.
// Built on demand from the runners (the one authority on state) and one /proc scan.
import type { StoreStatus } from '../sources/etcd/etcd-source.js';
import type { ConfigIssue } from '@emperor/config';
import type { Emperor } from '../emperor.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import type { VassalState } from '../machine/types.js';
import { instanceUsage } from './instance-usage.js';
import type { CpuSampler, InstanceUsage } from './cpu-sampler.js';
import { BACKOFF_RESET_MS } from '../machine/backoff.js';

/** How many stderr lines a status carries per vassal. */
export const STATUS_STDERR_LINES = 5;

export interface EmperorInfo {
  readonly pid: number;
  readonly version: string;
  /** Epoch ms when the emperor started. */
  readonly startedAt: number;
  readonly vassalDirs: readonly string[];
}

export interface InstanceStatus {
  readonly index: number;
  readonly generation: number;
  readonly pid: number | null;
  readonly state: string;
  readonly uptime_s: number;
  readonly rss_bytes: number | null;
  readonly cpu_percent: number | null;
  readonly cpu_seconds: number | null;
  /** The last sd_notify `STATUS=` the instance sent (`ready = fd` or `notify`), or null. */
  readonly status: string | null;
}

/** A side process of the vassal (`attach-daemon`). */
export interface SideDaemonStatus {
  /** `attach-<index>` in its log lines and cgroup. */
  readonly index: number;
  /** `attach` (`attach-daemon`) or `smart` (`smart-attach-daemon`: `pid` is the one its pidfile names). */
  readonly kind: 'attach' | 'smart';
  /** A `smart-attach-daemon`'s pidfile. */
  readonly pidfile?: string;
  readonly command: string;
  /** Null while it waits out its backoff (or its spawn is out). */
  readonly pid: number | null;
  readonly state: string;
  /** Seconds since its last start; null when it does not run. */
  readonly uptime_s: number | null;
  /** Times it was started again after dying. */
  readonly restarts: number;
  readonly rss_bytes: number | null;
  readonly cpu_percent: number | null;
}

/** A `cron` / `unique-cron` job of the vassal. */
export interface CronJobStatus {
  /** `cron-<job>` in its runs' log lines: its place among the vassal's cron lines, from 0. */
  readonly job: number;
  /** Its line in the vassal file. */
  readonly line: number;
  readonly command: string;
  readonly unique: boolean;
  /** Pids of its runs going now (a plain `cron` may overlap). */
  readonly running: number[];
  /** When its last run started (ISO), null before the first. */
  readonly last_run: string | null;
  /** How its last finished run ended; `reason` when it could not be spawned. */
  readonly last_exit: { code: number | null; signal: string | null; at: string; reason?: string } | null;
  /** When it runs next (ISO), on the emperor's wall clock. */
  readonly next_run: string | null;
  /** `unique-cron` runs skipped because the previous one still went. */
  readonly skipped: number;
}

export interface ErrorStatus {
  readonly code: string;
  readonly file: string;
  readonly line: number | null;
  readonly key: string | null;
  readonly message: string;
}

export interface VassalStatus {
  readonly name: string;
  readonly file: string;
  readonly state: VassalState;
  readonly generation: number;
  readonly restarts: number;
  readonly sockets: string[];
  /**
   * Whether `sockets` are bound and listening. They are closed in `stopped` and `failed` (clients
   * are refused); false too when there are none.
   */
  readonly sockets_open: boolean;
  readonly instances: InstanceStatus[];
  /** Side daemons (`attach-daemon`): not instances, never counted for readiness or `uptime_s`. */
  readonly side_daemons?: SideDaemonStatus[];
  /** Cron jobs (`cron`, `unique-cron`), scheduled while the vassal runs. */
  readonly cron_jobs?: CronJobStatus[];
  /** Instances replaced for `max-rss` or `max-lifetime` since the vassal was first started. */
  readonly recycles?: number;
  /** The last of them: why (`rss 212 MiB > max-rss 200 MiB for 2 samples`) and when. */
  readonly last_recycle?: { reason: string; at: string } | null;
  /** The file's `max-rss` (bytes) and `max-lifetime` (seconds) that recycle its instances; null if unset. */
  readonly recycle_limits?: { max_rss_bytes: number | null; max_lifetime_s: number | null };
  readonly last_exit: { code: number | null; signal: string | null; at: string } | null;
  readonly last_stderr: string[];
  readonly backoff_until: string | null;
  /** The first of `errors`, as SPEC §5 has it. */
  readonly error: ErrorStatus | null;
  /** Every error of the pending config, in the order `emperor check` prints them. */
  readonly errors: ErrorStatus[];
  // Fields beyond SPEC §5 (allowed: "more fields may be added").
  /** Why the vassal is failed, or why its last reload was abandoned. */
  readonly reason: string | null;
  /** When a failed vassal is retried by itself (every restart-delay-max). */
  readonly retry_at: string | null;
  /** Seconds since the oldest instance of the serving generation started. */
  readonly uptime_s: number | null;
  readonly processes: number;
  /**
   * Consecutive quick exits (each within 10 s of its start) not yet outlived: 0 once the youngest
   * instance has run 10 s since the last one. A crash loop shows here while it is briefly `running`.
   */
  readonly quick_exits: number;
}

export type { StoreStatus };

export interface StatusSnapshot {
  readonly emperor: {
    pid: number;
    version: string;
    uptime_s: number;
    vassal_dirs: string[];
    /** Watched directories that do not exist now; their vassals start when they appear. */
    missing_dirs?: string[];
    /** Vassal files that are symlinks leading nowhere; each starts when its target appears. */
    dangling_links?: { file: string; target: string }[];
    /** The name `nodes` placement matches (`run --node-name`). */
    node?: string;
    /** Each etcd source: connected, its revision, whether the set running came from the cache (docs/fleet.md). */
    stores?: StoreStatus[];
    /** How every process of a vassal is tracked and stopped (docs/lifecycle.md, "Containment"). */
    containment?: { mode: 'cgroup' | 'subreaper'; cgroup: string | null; reason: string | null };
    /** The emperor's own resident memory. */
    rss_bytes?: number;
  };
  readonly vassals: VassalStatus[];
}

/** Every known name: running vassals and files that never parsed. */
export function knownNames(emperor: Emperor): string[] {
  const names = new Set<string>(emperor.reconciler.runners.keys());
  for (const name of emperor.reconciler.errors.keys()) names.add(name);
  return [...names].sort();
}

export function buildStatus(
  emperor: Emperor,
  info: EmperorInfo,
  sampler: CpuSampler,
  names: readonly string[],
  retryAt: (runner: VassalRunner) => number | undefined,
  now: number = Date.now(),
): StatusSnapshot {
  const runners = emperor.reconciler.runners;
  const shown = names.flatMap((name) => runners.get(name) ?? []);
  const usage = instanceUsage(emperor, sampler, shown, { sides: true });
  const vassals = names.map((name) => {
    const runner = runners.get(name);
    const pending = emperor.reconciler.errors.get(name) ?? emperor.reconciler.duplicates.get(name);
    return runner
      ? runnerStatus(runner, pending, usage, retryAt(runner), now)
      : errorOnlyStatus(name, pending);
  });
  return {
    emperor: {
      pid: info.pid,
      version: info.version,
      uptime_s: Math.floor((now - info.startedAt) / 1000),
      vassal_dirs: [...info.vassalDirs],
      missing_dirs: emperor.missingDirs(),
      dangling_links: emperor.danglingLinks(),
      node: emperor.nodeName,
      stores: emperor.stores(),
      containment: {
        mode: emperor.containment.mode,
        cgroup: emperor.containment.cgroup ?? null,
        reason: emperor.containment.reason ?? null,
      },
      rss_bytes: process.memoryUsage.rss(),
    },
    vassals,
  };
}

function runnerStatus(
  runner: VassalRunner,
  pending: { readonly path: string; readonly issues: readonly ConfigIssue[] } | undefined,
  usage: ReadonlyMap<number, InstanceUsage>,
  retryAt: number | undefined,
  now: number,
): VassalStatus {
  const v = runner.vassal;
  const serving = v.instances.filter((i) => i.generation === v.generation && i.pid !== undefined);
  const oldest = serving.reduce<number | undefined>(
    (m, i) => (m === undefined ? i.startedAt : Math.min(m, i.startedAt)),
    undefined,
  );
  return {
    name: v.name,
    file: v.config.file,
    state: v.state,
    generation: v.generation,
    restarts: v.restarts,
    sockets: v.config.sockets.map((s) => (s.name === undefined ? s.address : `${s.name}=${s.address}`)),
    sockets_open: v.bound,
    instances: [...v.instances]
      .sort((a, b) => a.generation - b.generation || a.index - b.index)
      .map((i) => {
        const u = i.pid === undefined ? undefined : usage.get(i.pid);
        return {
          index: i.index,
          generation: i.generation,
          pid: i.pid ?? null,
          state: i.state,
          uptime_s: Math.max(0, Math.floor((now - i.startedAt) / 1000)),
          rss_bytes: u?.rssBytes ?? null,
          cpu_percent: u?.cpuPercent ?? null,
          cpu_seconds: u?.cpuSeconds ?? null,
          status: (i.pid === undefined ? undefined : runner.statusOf(i.pid)) ?? null,
        };
      }),
    // Cron runs are not side daemons: they are shown under their job.
    side_daemons: v.sides.flatMap((d) => {
      if (d.kind === 'cron') return [];
      const u = d.pid === undefined ? undefined : usage.get(d.pid);
      return [
        {
          index: d.index,
          kind: d.kind,
          ...(d.pidfile === undefined ? {} : { pidfile: d.pidfile }),
          command: d.command,
          pid: d.pid ?? null,
          state: d.state,
          uptime_s: d.pid === undefined ? null : Math.max(0, Math.floor((now - d.startedAt) / 1000)),
          restarts: d.restarts,
          rss_bytes: u?.rssBytes ?? null,
          cpu_percent: u?.cpuPercent ?? null,
        },
      ];
    }),
    cron_jobs: v.crons.map((j) => ({
      job: j.id,
      line: j.spec.line,
      command: j.spec.command,
      unique: j.spec.unique,
      running: v.sides.flatMap((d) =>
        d.kind === 'cron' && d.job === j.id && d.pid !== undefined ? [d.pid] : [],
      ),
      last_run: j.lastStartAt === undefined ? null : new Date(j.lastStartAt).toISOString(),
      last_exit: j.lastExit
        ? {
            code: j.lastExit.code,
            signal: j.lastExit.signal,
            at: new Date(j.lastExit.at).toISOString(),
            ...(j.lastExit.reason === undefined ? {} : { reason: j.lastExit.reason }),
          }
        : null,
      next_run: runner.cronNext(j.id)?.toISOString() ?? null,
      skipped: j.skipped,
    })),
    recycles: v.recycles,
    recycle_limits: {
      max_rss_bytes: v.config.maxRssBytes ?? null,
      max_lifetime_s: v.config.maxLifetimeMs === undefined ? null : v.config.maxLifetimeMs / 1000,
    },
    last_recycle: v.lastRecycle
      ? { reason: v.lastRecycle.reason, at: new Date(v.lastRecycle.at).toISOString() }
      : null,
    last_exit: v.lastExit
      ? { code: v.lastExit.code, signal: v.lastExit.signal, at: new Date(v.lastExit.at).toISOString() }
      : null,
    last_stderr: runner.log.recentLines(STATUS_STDERR_LINES),
    backoff_until:
      v.state === 'backoff' && v.backoffUntil !== undefined ? new Date(v.backoffUntil).toISOString() : null,
    ...pendingErrors(pending),
    reason: v.reason ?? null,
    retry_at: v.state === 'failed' && retryAt !== undefined ? new Date(retryAt).toISOString() : null,
    uptime_s: oldest === undefined ? null : Math.max(0, Math.floor((now - oldest) / 1000)),
    processes: v.config.processes,
    quick_exits: quickExits(v.backoffStep, v.state, serving, now),
  };
}

/** The machine's backoff step, unless every serving instance has outlived the reset period. */
function quickExits(
  step: number,
  state: VassalState,
  serving: readonly { readonly startedAt: number }[],
  now: number,
): number {
  if (step === 0 || state === 'stopped' || state === 'failed') return 0;
  const youngest = Math.max(...serving.map((i) => i.startedAt));
  return serving.length > 0 && now - youngest >= BACKOFF_RESET_MS ? 0 : step;
}

/** A file that has never parsed: nothing runs; it shows as `failed` with its error. */
function errorOnlyStatus(
  name: string,
  pending: { readonly path: string; readonly issues: readonly ConfigIssue[] } | undefined,
): VassalStatus {
  const errors = pendingErrors(pending);
  return {
    name,
    file: pending?.path ?? '',
    state: 'failed',
    generation: 0,
    restarts: 0,
    sockets: [],
    sockets_open: false,
    instances: [],
    side_daemons: [],
    cron_jobs: [],
    recycles: 0,
    last_recycle: null,
    last_exit: null,
    last_stderr: [],
    backoff_until: null,
    ...errors,
    reason: errors.error ? 'the vassal file has errors' : null,
    retry_at: null,
    uptime_s: null,
    quick_exits: 0,
    processes: 0,
  };
}

/** `errors`: each error of the pending config (or, with none of error severity, its first issue); `error` the first. */
function pendingErrors(
  pending: { readonly path: string; readonly issues: readonly ConfigIssue[] } | undefined,
): { error: ErrorStatus | null; errors: ErrorStatus[] } {
  if (!pending) return { error: null, errors: [] };
  const chosen = pending.issues.filter((i) => i.severity === 'error');
  const issues = chosen.length > 0 ? chosen : pending.issues.slice(0, 1);
  const errors: ErrorStatus[] = issues.map((i) => ({
    code: i.code,
    file: i.file,
    line: i.line ?? null,
    key: i.key ?? null,
    message: i.message,
  }));
  if (errors.length === 0)
    errors.push({
      code: 'EMP_CONFIG_INVALID',
      file: pending.path,
      line: null,
      key: null,
      message: 'the vassal file is invalid',
    });
  return { error: errors[0] ?? null, errors };
}
