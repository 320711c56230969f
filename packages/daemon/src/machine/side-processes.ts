// Side processes (`attach-daemon`): started with the vassal's first generation, restarted with
// their own backoff when they die, kept across reloads unless their own line changed, stopped
// with the vassal. They never count for readiness or generations (types.ts, `ProcessKind`).
// Cron runs are side processes too (cron-jobs.ts): they share the spawn, stop and exit paths here.
import type { VassalConfig } from '@emperor/config';
import { BACKOFF_RESET_MS } from './backoff.js';
import { recordCronExit, syncCrons, unscheduleCrons } from './cron-jobs.js';
import type { Step } from './step.js';
import type { SideProcess, Vassal } from './types.js';

/** Signal that asks a side daemon to stop (uWSGI sends it too); the whole cell is killed after stop-timeout. */
const SIDE_STOP_SIGNAL = 'SIGTERM';

export function findSide(v: Vassal, pid: number): SideProcess | undefined {
  return v.sides.find((d) => d.pid === pid);
}

function replaceSide(s: Step, old: SideProcess, next: SideProcess | undefined): void {
  s.set({ sides: next ? s.v.sides.map((d) => (d === old ? next : d)) : s.v.sides.filter((d) => d !== old) });
}

/** The lowest `attach-<n>` that no side process of the vassal holds (a stopping one keeps its cgroup). */
function freeIndex(v: Vassal): number {
  const used = new Set(v.sides.map((d) => d.index));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

function spawnSide(s: Step, d: SideProcess, config: VassalConfig): void {
  const { kind, index, command, pidfile } = d;
  if (kind === 'cron') return; // a cron run is spawned by its job (cron-jobs.ts)
  s.emit({ type: 'spawn-side', kind, index, command, ...(pidfile === undefined ? {} : { pidfile }), config });
}

/** An `attach-daemon` or `smart-attach-daemon` line, as syncSides compares them. */
interface DaemonLine {
  readonly kind: 'attach' | 'smart';
  readonly command: string;
  readonly pidfile?: string;
}

function sameLine(d: SideProcess, l: DaemonLine): boolean {
  return d.kind === l.kind && d.command === l.command && d.pidfile === l.pidfile;
}

/**
 * Makes the side processes match `config`'s `attach-daemon` lines: a line without a process gets
 * one, a process whose line is gone is stopped, and one whose line is still there is left alone.
 * The cron jobs follow their lines alike (cron-jobs.ts).
 */
export function syncSides(s: Step, config: VassalConfig, at: number): Step {
  syncCrons(s, config, (d) => {
    stopSide(s, d);
  });
  const wanted: DaemonLine[] = [
    ...config.attachDaemons.map((command) => ({ kind: 'attach' as const, command })),
    ...config.smartAttachDaemons.map((l) => ({
      kind: 'smart' as const,
      command: l.command,
      pidfile: l.pidfile,
    })),
  ];
  for (const d of s.v.sides) {
    if (d.state === 'stopping' || d.kind === 'cron') continue;
    const i = wanted.findIndex((l) => sameLine(d, l));
    if (i >= 0) wanted.splice(i, 1);
    else stopSide(s, d);
  }
  for (const line of wanted) {
    const d: SideProcess = {
      kind: line.kind,
      ...(line.pidfile === undefined ? {} : { pidfile: line.pidfile }),
      index: freeIndex(s.v),
      command: line.command,
      pid: undefined,
      state: 'starting',
      startedAt: at,
      restarts: 0,
      backoffStep: 0,
      stopTimeoutMs: config.stopTimeoutMs,
    };
    s.set({ sides: [...s.v.sides, d] });
    spawnSide(s, d, config);
  }
  return s;
}

function stopSide(s: Step, d: SideProcess): void {
  if (d.state === 'backoff') {
    // Nothing runs: forget it.
    s.emit({ type: 'cancel', timer: { kind: 'side-backoff', index: d.index } });
    replaceSide(s, d, undefined);
    return;
  }
  if (d.pid !== undefined) {
    s.emit(
      { type: 'signal', pid: d.pid, signal: SIDE_STOP_SIGNAL },
      { type: 'arm', timer: { kind: 'stop-timeout', pid: d.pid }, ms: d.stopTimeoutMs },
    );
  }
  // One without a pid yet is signalled as soon as its `spawned` outcome arrives.
  replaceSide(s, d, { ...d, state: 'stopping' });
}

/** Stops every side process and cron job (the vassal stops, fails or is removed). */
export function stopSides(s: Step): Step {
  unscheduleCrons(s);
  for (const d of s.v.sides) if (d.state !== 'stopping') stopSide(s, d);
  return s;
}

/** Whether a side process is still being stopped: a stop of the vassal waits for it. */
export function sidesStopping(v: Vassal): boolean {
  return v.sides.some((d) => d.state === 'stopping');
}

export function onSideSpawned(s: Step, index: number, pid: number, at: number): Step {
  const d = s.v.sides.find((x) => x.index === index && x.pid === undefined && x.state !== 'backoff');
  if (!d) {
    // Never leak a process we have no record of.
    return s.log('warn', 'unexpected-spawn', { pid, attach: index }).emit({ type: 'kill-group', pid });
  }
  const withPid: SideProcess = { ...d, pid, startedAt: at };
  if (d.kind === 'cron') s.log('info', 'cron-start', { pid, cron: d.job, command: d.command });
  else s.log('info', 'attach-spawn', { pid, attach: index, command: d.command, pidfile: d.pidfile });
  if (d.state === 'stopping') {
    replaceSide(s, d, { ...withPid, state: 'running' });
    const running = s.v.sides.find((x) => x.pid === pid);
    if (running) stopSide(s, running);
    return s;
  }
  replaceSide(s, d, { ...withPid, state: 'running' });
  return s;
}

/** A spawn that failed is a death like any other: backoff (or gone, if it was being stopped). */
export function onSideSpawnFailed(s: Step, index: number, reason: string, at: number): Step {
  const d = s.v.sides.find((x) => x.index === index && x.pid === undefined && x.state !== 'backoff');
  if (d?.kind === 'cron') {
    if (d.state === 'stopping') {
      replaceSide(s, d, undefined);
      return s;
    }
    // A run that cannot start is a failed run, not a daemon to restart: the next one is due on time.
    return recordCronExit(s, d, { code: null, signal: null, at, reason });
  }
  s.log('error', 'attach-spawn-failed', { attach: index, reason });
  if (!d) return s;
  if (d.state === 'stopping') {
    replaceSide(s, d, undefined);
    return s;
  }
  return backoff(s, d, at, 0);
}

export function onSideExited(
  s: Step,
  d: SideProcess,
  code: number | null,
  signal: string | null,
  at: number,
): Step {
  const pid = d.pid ?? -1;
  s.emit({ type: 'kill-group', pid }, { type: 'cancel', timer: { kind: 'stop-timeout', pid } });
  if (d.kind === 'cron') return recordCronExit(s, d, { code, signal, at });
  const fields = { pid, attach: d.index, code, signal };
  if (d.state === 'stopping') {
    replaceSide(s, d, undefined);
    return s.log('info', 'attach-exit', fields);
  }
  s.log('warn', 'attach-exit', { ...fields, uptime_ms: at - d.startedAt });
  return backoff(s, d, at, at - d.startedAt);
}

/** Its own backoff, as the vassal's: restart-delay doubling up to restart-delay-max, reset after 10 s up. */
function backoff(s: Step, d: SideProcess, at: number, uptimeMs: number): Step {
  const c = s.v.config;
  const step = uptimeMs >= BACKOFF_RESET_MS ? 0 : d.backoffStep;
  const delay = Math.min(c.restartDelayMs * 2 ** step, c.restartDelayMaxMs);
  replaceSide(s, d, { ...d, pid: undefined, state: 'backoff', backoffStep: step + 1, startedAt: at });
  s.log('warn', 'attach-backoff', { attach: d.index, delay_ms: delay });
  return s.emit({ type: 'arm', timer: { kind: 'side-backoff', index: d.index }, ms: delay });
}

export function onSideBackoffOver(s: Step, index: number, at: number): Step {
  const d = s.v.sides.find((x) => x.index === index);
  if (d?.state !== 'backoff') return s;
  const next: SideProcess = { ...d, state: 'starting', restarts: d.restarts + 1, startedAt: at };
  replaceSide(s, d, next);
  spawnSide(s, next, s.v.config);
  return s;
}
