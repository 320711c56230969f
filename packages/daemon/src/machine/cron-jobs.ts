// Cron jobs (`cron`, `unique-cron`): scheduled on the wall clock from the vassal's first
// generation until it stops; each run is a one-shot side process (kind `cron`) in `Vassal.sides`,
// spawned like an attach-daemon (the vassal's user, env, chdir, umask and log) but never
// restarted: its exit is recorded on its job. A plain `cron` run may overlap the previous one (as
// uWSGI's); a `unique-cron` run is skipped, and logged, while the previous one still goes. When
// a run is due is the runner's CronTimer's business (schedule/cron-schedule.ts): it fires one
// `cron` timer per due run, never a burst after a clock jump.
import type { CronSpec, VassalConfig } from '@emperor/config';
import type { Step } from './step.js';
import type { CronJob, SideProcess } from './types.js';

/** What makes two cron lines the same job: all but their line number (an edit above moves it). */
function jobKey(spec: CronSpec): string {
  const { line: _line, ...rest } = spec;
  return JSON.stringify(rest);
}

function freeId(jobs: readonly CronJob[]): number {
  const used = new Set(jobs.map((j) => j.id));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** The lowest side index free (shared with attach-daemons: it names the cgroup leaf). */
function freeSideIndex(sides: readonly SideProcess[]): number {
  const used = new Set(sides.map((d) => d.index));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** How many values each field has: a field that lists them all is `*`. */
const FULL = [60, 24, 31, 12, 7];

/** The fields of a cron line, each as the list it expands to, `*` for all (for logs). */
export function cronTimesText(spec: CronSpec): string {
  return [spec.minute, spec.hour, spec.day, spec.month, spec.weekday]
    .map((f, i) => (f.length === FULL[i] ? '*' : f.join(',')))
    .join(' ');
}

/**
 * Makes the scheduled jobs match `config`'s cron lines: a line still there keeps its job (its
 * schedule, its last run, a run that still goes); a new line is scheduled; a job whose line is
 * gone is unscheduled and its runs stopped.
 */
export function syncCrons(s: Step, config: VassalConfig, stopRun: (d: SideProcess) => void): Step {
  const wanted = [...config.crons];
  const kept: CronJob[] = [];
  for (const job of s.v.crons) {
    const i = wanted.findIndex((w) => jobKey(w) === jobKey(job.spec));
    if (i >= 0) {
      kept.push({ ...job, spec: wanted[i] as CronSpec });
      wanted.splice(i, 1);
      continue;
    }
    unschedule(s, job, stopRun);
  }
  s.set({ crons: kept });
  for (const spec of wanted) {
    const job: CronJob = {
      id: freeId(s.v.crons),
      spec,
      lastStartAt: undefined,
      lastExit: undefined,
      skipped: 0,
    };
    s.set({ crons: [...s.v.crons, job] });
    s.emit({ type: 'schedule-cron', timer: { kind: 'cron', index: job.id }, spec });
    s.log('info', 'cron-scheduled', {
      cron: job.id,
      schedule: cronTimesText(spec),
      unique: spec.unique,
      command: spec.command,
    });
  }
  return s;
}

function unschedule(s: Step, job: CronJob, stopRun: (d: SideProcess) => void): void {
  s.emit({ type: 'cancel', timer: { kind: 'cron', index: job.id } });
  for (const d of s.v.sides) if (d.kind === 'cron' && d.job === job.id && d.state !== 'stopping') stopRun(d);
}

/** The vassal stops (or fails, or is removed): no more runs; those that go are stopped by the caller. */
export function unscheduleCrons(s: Step): Step {
  for (const job of s.v.crons) s.emit({ type: 'cancel', timer: { kind: 'cron', index: job.id } });
  return s.set({ crons: [] });
}

function replaceJob(s: Step, old: CronJob, next: CronJob): void {
  s.set({ crons: s.v.crons.map((j) => (j === old ? next : j)) });
}

/** A run of job `id` is due: spawn it, unless it is a `unique-cron` whose previous run still goes. */
export function onCronDue(s: Step, id: number, at: number): Step {
  const job = s.v.crons.find((j) => j.id === id);
  if (!job) return s; // unscheduled meanwhile
  const running = s.v.sides.filter((d) => d.kind === 'cron' && d.job === id);
  if (job.spec.unique && running.length > 0) {
    replaceJob(s, job, { ...job, skipped: job.skipped + 1 });
    return s.log('warn', 'cron-skipped', {
      cron: id,
      pid: running[0]?.pid,
      reason: 'the previous run of this unique-cron is still going',
    });
  }
  const run: SideProcess = {
    kind: 'cron',
    index: freeSideIndex(s.v.sides),
    job: id,
    command: job.spec.command,
    pid: undefined,
    state: 'starting',
    startedAt: at,
    restarts: 0,
    backoffStep: 0,
    stopTimeoutMs: s.v.config.stopTimeoutMs,
  };
  replaceJob(s, job, { ...job, lastStartAt: at });
  s.set({ sides: [...s.v.sides, run] });
  return s.emit({
    type: 'spawn-side',
    kind: 'cron',
    index: run.index,
    job: id,
    command: run.command,
    config: s.v.config,
  });
}

/** A run ended by itself (or could not be spawned): recorded on its job, and gone. */
export function recordCronExit(
  s: Step,
  d: SideProcess,
  exit: { code: number | null; signal: string | null; at: number; reason?: string },
): Step {
  s.set({ sides: s.v.sides.filter((x) => x !== d) });
  const job = s.v.crons.find((j) => j.id === d.job);
  const failed = exit.code !== 0 || exit.signal !== null;
  s.log(failed ? 'warn' : 'info', 'cron-exit', {
    cron: d.job,
    pid: d.pid,
    code: exit.code,
    signal: exit.signal,
    reason: exit.reason,
    duration_ms: exit.at - d.startedAt,
  });
  if (job) {
    const { code, at, reason } = exit;
    const signal = exit.signal as NonNullable<CronJob['lastExit']>['signal'];
    replaceJob(s, job, {
      ...job,
      lastExit: { code, signal, at, ...(reason === undefined ? {} : { reason }) },
    });
  }
  return s;
}
