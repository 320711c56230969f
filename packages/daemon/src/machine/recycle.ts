// Recycling (`max-rss`, `max-lifetime`): an instance is replaced by a fresh one of the same
// generation and config, one instance of a vassal at a time. With owned sockets the replacement
// starts beside it and the old one is told to stop only once the replacement is ready (a
// per-instance rolling replace: the listening socket never closes); without, the old one stops
// first, since it holds the app's own port. The instance records carry the replace: the
// replacement has `replaces` (the old pid), the old one `recycling` (why) until it exits.
// docs/lifecycle.md, "Recycling".
import type { VassalConfig } from '@emperor/config';
import type { Instance, Transition, Vassal } from './types.js';
import { Step, configOf, current, findPid, replaceInstance, type Handler } from './step.js';
import { stopInstances } from './builders.js';

/** How soon a `max-lifetime` that is due but cannot be acted on now (a reload, another recycle) is looked at again. */
export const RECYCLE_RETRY_MS = 1000;

/** `max-lifetime` is cut by up to this fraction, so that the instances of a vassal are not replaced together. */
export const LIFETIME_JITTER = 0.1;

/** Whether an instance of the vassal is being replaced now (only one at a time is). */
export function recycleUnderWay(v: Vassal): boolean {
  return v.instances.some(
    (i) => i.recycling !== undefined || (i.replaces !== undefined && i.state === 'starting'),
  );
}

/** The sampler's `recycle` (`max-rss`): only in `running` (the table). */
export const onRecycle: Handler<'recycle'> = (v, e) => {
  const s = new Step(v);
  const inst = findPid(v, e.pid);
  if (inst?.state !== 'running' || inst.recycling !== undefined) return s.done();
  // Refused now (another recycle, or a replacement just failed): the sampler asks again next second.
  recycle(s, inst, e.reason, e.at);
  return s.done();
};

/** The `lifetime` timer of `pid` fired. */
export function onLifetime(s: Step, pid: number, at: number): Transition {
  const v = s.v;
  const inst = findPid(v, pid);
  if (inst?.state !== 'running' || inst.recycling !== undefined) return s.done();
  const lifetimeMs = configOf(v, inst).maxLifetimeMs;
  if (lifetimeMs === undefined) return s.done();
  const reason = `ran ${seconds(at - inst.startedAt)} s, max-lifetime ${seconds(lifetimeMs)} s`;
  if (v.state === 'running' && recycle(s, inst, reason, at)) return s.done();
  // Not now (a reload, a backoff, another instance being replaced): look again soon.
  const wait = Math.max(RECYCLE_RETRY_MS, (v.recycleRetryAt ?? 0) - at);
  return s.emit({ type: 'arm', timer: { kind: 'lifetime', pid }, ms: wait }).done();
}

/** Starts replacing `inst`; false when a recycle may not start now. */
function recycle(s: Step, inst: Instance, reason: string, at: number): boolean {
  const v = s.v;
  if (v.state !== 'running' || v.stopGoal !== undefined || inst.generation !== v.generation) return false;
  if (recycleUnderWay(v) || (v.recycleRetryAt !== undefined && at < v.recycleRetryAt)) return false;
  const rolling = configOf(v, inst).sockets.length > 0;
  const marked: Instance = { ...inst, recycling: reason };
  s.set({
    instances: replaceInstance(v, inst, marked),
    recycles: v.recycles + 1,
    lastRecycle: { reason, at },
    recycleRetryAt: undefined,
  });
  s.log('warn', 'recycle', {
    pid: inst.pid,
    instance: inst.index,
    reason,
    replace: rolling ? 'start-then-stop' : 'stop-then-start',
  });
  if (inst.pid !== undefined) s.emit({ type: 'cancel', timer: { kind: 'lifetime', pid: inst.pid } });
  if (rolling) spawnReplacement(s, marked, at);
  else stopInstances(s, (i) => i === marked); // its exit (onRecycledExit) starts the replacement
  return true;
}

/** A fresh instance in `old`'s slot: same generation, index and config, the next turn. */
function spawnReplacement(s: Step, old: Instance, at: number): void {
  const config = configOf(s.v, old);
  const turn = (old.turn ?? 0) + 1;
  const fresh: Instance = {
    kind: 'app',
    generation: old.generation,
    index: old.index,
    pid: undefined,
    state: 'starting',
    startedAt: at,
    stopSignal: config.stopSignal,
    stopTimeoutMs: config.stopTimeoutMs,
    turn,
    replaces: old.pid,
  };
  s.set({ instances: [...s.v.instances, fresh] });
  s.emit({ type: 'spawn', generation: old.generation, index: old.index, config, turn });
}

/**
 * `inst` became ready (markReady): its `max-lifetime` starts counting down, and if it is a
 * replacement, the instance it replaces is told to stop now.
 */
export function afterReady(s: Step, inst: Instance, at: number): void {
  const config = configOf(s.v, inst);
  if (inst.pid !== undefined && config.maxLifetimeMs !== undefined) {
    const ms = lifetimeDelay(config, inst) - (at - inst.startedAt);
    s.emit({ type: 'arm', timer: { kind: 'lifetime', pid: inst.pid }, ms: Math.max(0, ms) });
  }
  if (inst.replaces === undefined) return;
  const old = findPid(s.v, inst.replaces);
  if (old === undefined || old.state === 'stopping') return;
  s.log('info', 'recycled', { pid: old.pid, instance: old.index, by: inst.pid });
  stopInstances(s, (i) => i === old);
}

/**
 * An instance left (its `exited` was handled up to the restart decision). Returns true when
 * recycling accounts for it and nothing else is to be done:
 * - the old instance of a stop-then-start replace is gone: its replacement starts now;
 * - the old instance of a rolling replace died while its replacement starts: that one takes the slot;
 * - a rolling replacement died before it was ready: the old instance serves on, recycling pauses.
 */
export function onRecycledExit(s: Step, inst: Instance, at: number): boolean {
  const v = s.v;
  if (inst.recycling !== undefined) {
    const replacement = v.instances.some((i) => i.replaces !== undefined && i.replaces === inst.pid);
    if (replacement) return true;
    if (inst.state !== 'stopping' || v.stopGoal !== undefined || inst.generation !== v.generation)
      return false;
    if (v.state !== 'running' && v.state !== 'starting' && v.state !== 'backoff') return false;
    // Stop-then-start: nothing of this slot serves now; the vassal is starting if nothing else does.
    if (!current(v).some((i) => i.state === 'running') && v.state === 'running') s.set({ state: 'starting' });
    spawnReplacement(s, inst, at);
    return true;
  }
  return inst.state === 'starting' && replacementFailed(s, inst, 'exited before it was ready', at);
}

/**
 * A replacement could not start (spawn failed, exited or timed out before it was ready). With the
 * instance it replaces still serving, that one serves on and no recycle is tried for
 * `restart-delay-max`. Without (stop-then-start), the slot is empty: false, the usual rules apply.
 */
export function replacementFailed(s: Step, inst: Instance, why: string, at: number): boolean {
  if (inst.replaces === undefined) return false;
  const old = findPid(s.v, inst.replaces);
  if (old === undefined || old.state === 'stopping') return false;
  const config = configOf(s.v, old);
  const retryMs = config.restartDelayMaxMs;
  s.set({
    instances: replaceInstance(s.v, old, { ...old, recycling: undefined }),
    recycleRetryAt: at + retryMs,
  });
  s.log('error', 'recycle-failed', { pid: old.pid, instance: old.index, reason: why, retry_in_ms: retryMs });
  if (old.pid !== undefined && config.maxLifetimeMs !== undefined)
    s.emit({ type: 'arm', timer: { kind: 'lifetime', pid: old.pid }, ms: retryMs });
  return true;
}

/**
 * How long after its start an instance is replaced: `max-lifetime` less a jitter of up to 10 %.
 * The jitter spaces the slots of a vassal evenly (slot `index` of `processes`), offset by a hash
 * of the vassal's name and the turn, so that vassals started together spread out too. Pure: the
 * same instance always gets the same figure.
 */
export function lifetimeDelay(config: VassalConfig, inst: Instance): number {
  const lifetimeMs = config.maxLifetimeMs ?? 0;
  const slots = Math.max(1, config.processes);
  const offset = fraction(`${config.name}/${inst.turn ?? 0}`);
  const jitter = LIFETIME_JITTER * (((inst.index % slots) + offset) / slots);
  return Math.round(lifetimeMs * (1 - jitter));
}

/** FNV-1a of `text`, as a fraction in [0, 1). */
function fraction(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}
