// What handlers build transitions from: start a generation (binding its sockets first), stop
// instances, fail, and `settle`, which derives what follows once the instances have changed.
import type { VassalConfig } from '@emperor/config';
import type { Instance, StopGoal, Transition } from './types.js';
import { sameSockets } from './process-spec.js';
import { sidesStopping, stopSides, syncSides } from './side-processes.js';
import { afterReady } from './recycle.js';
import { Step, current, findPid, idleProbeMs, replaceInstance, configOf } from './step.js';

/** Spawns the given slots of `generation` with `config`. */
export function spawnSlots(
  s: Step,
  config: VassalConfig,
  generation: number,
  indexes: readonly number[],
  at: number,
): Step {
  const fresh: Instance[] = indexes.map((index) => ({
    kind: 'app',
    generation,
    index,
    pid: undefined,
    state: 'starting',
    startedAt: at,
    stopSignal: config.stopSignal,
    stopTimeoutMs: config.stopTimeoutMs,
  }));
  s.set({ instances: [...s.v.instances, ...fresh] });
  for (const i of fresh) s.emit({ type: 'spawn', generation, index: i.index, config });
  return s;
}

/** Starts a new generation. Older instances (if any) keep serving until it is ready. */
export function startGeneration(s: Step, config: VassalConfig, at: number): Step {
  const generation = s.v.lastGeneration + 1;
  // Any live instance here is of an older generation: a rolling reload (also a reload of a reload).
  const rolling = s.v.instances.some((i) => i.state !== 'stopping');
  s.set({
    // A reload of a reload keeps the config of the generation that actually serves.
    servingConfig: rolling ? (s.v.state === 'reloading' ? s.v.servingConfig : s.v.config) : undefined,
    config,
    generation,
    lastGeneration: generation,
    state: rolling ? 'reloading' : 'starting',
    stopGoal: undefined,
    backoffUntil: undefined,
  });
  s.log('info', 'generation-start', { processes: config.processes });
  const indexes = Array.from({ length: config.processes }, (_, i) => i);
  // Side processes start with the first generation and follow the config of each later one.
  syncSides(s, config, at);
  return spawnSlots(s, config, generation, indexes, at);
}

/** The first state of a vassal that is meant to run: bind its sockets if needed, then wait or start. */
export function begin(s: Step, config: VassalConfig, at: number): Step {
  s.emit({ type: 'cancel', timer: { kind: 'retry' } }, { type: 'cancel', timer: { kind: 'backoff' } });
  s.set({ reason: undefined, stopGoal: undefined, bindFailure: undefined });
  if (config.sockets.length > 0 && !(s.v.bound && sameSockets(s.v.config, config))) {
    // The outcome (`bound` or `bind-failed`) continues in afterBind or fail.
    return s.set({ config, state: 'starting', binding: true }).emit({ type: 'bind', config });
  }
  if (config.sockets.length === 0 && s.v.bound) closeSockets(s);
  return afterBind(s, config, at);
}

export function afterBind(s: Step, config: VassalConfig, at: number): Step {
  if (config.onDemand) {
    return s.set({ config, state: 'waiting' }).log('info', 'waiting').emit({ type: 'watch-sockets' });
  }
  return startGeneration(s, config, at);
}

export function closeSockets(s: Step): Step {
  if (s.v.bound || s.v.binding) s.emit({ type: 'close-sockets' });
  return s.set({ bound: false, binding: false });
}

/** Cannot start: `failed` (sockets closed, clients refused) until a retry, a change or a restart. */
export function fail(s: Step, reason: string, retryMs = s.v.config.restartDelayMaxMs): Step {
  return closeSockets(stopSides(s))
    .set({ state: 'failed', reason })
    .log('error', 'failed', { reason, retry_in_ms: retryMs })
    .emit({ type: 'arm', timer: { kind: 'retry' }, ms: retryMs });
}

/** Sends the stop signal to the instances matching `which` (not already stopping). */
export function stopInstances(s: Step, which: (i: Instance) => boolean): Step {
  const instances = s.v.instances.map((i): Instance => {
    if (i.state === 'stopping' || !which(i)) return i;
    if (i.pid !== undefined) {
      s.emit(
        { type: 'cancel', timer: { kind: 'ready-timeout', pid: i.pid } },
        { type: 'cancel', timer: { kind: 'ready-delay', pid: i.pid } },
        { type: 'cancel', timer: { kind: 'watchdog', pid: i.pid } },
        { type: 'cancel', timer: { kind: 'lifetime', pid: i.pid } },
        { type: 'signal', pid: i.pid, signal: i.stopSignal },
        { type: 'arm', timer: { kind: 'stop-timeout', pid: i.pid }, ms: i.stopTimeoutMs },
      );
    }
    // A stopping instance without a pid is signalled as soon as its `spawned` outcome arrives.
    return { ...i, state: 'stopping' };
  });
  return s.set({ instances });
}

/** Stops everything, then does what `goal` says once the last instance is gone. */
export function stopAll(s: Step, goal: StopGoal, at: number): Transition {
  s.emit({ type: 'cancel', timer: { kind: 'backoff' } }, { type: 'cancel', timer: { kind: 'retry' } });
  stopInstances(s, () => true).set({ stopGoal: goal, backoffUntil: undefined, binding: false });
  // A restart or an on-demand sleep keeps the side processes; every other stop takes them along.
  if (stopsSides(goal)) stopSides(s);
  if (goal.kind === 'restart') s.set({ state: 'reloading' });
  else s.set({ state: 'stopping' });
  return settle(s, at);
}

function stopsSides(goal: StopGoal): boolean {
  return goal.kind !== 'restart' && goal.kind !== 'sleep';
}

/** Derives what follows from the instances left: a finished stop, or a generation now fully ready. */
export function settle(s: Step, at: number): Transition {
  const v = s.v;
  if (v.stopGoal) {
    if (v.instances.length > 0 || (stopsSides(v.stopGoal) && sidesStopping(v))) return s.done();
    const goal = v.stopGoal;
    s.set({ stopGoal: undefined });
    switch (goal.kind) {
      case 'hold':
        return closeSockets(s).set({ state: 'stopped' }).log('info', 'stopped').done();
      case 'exit':
        return closeSockets(s)
          .set({ state: 'stopped' })
          .log('info', 'stopped', { reason: 'exited, restart = no' })
          .done();
      case 'remove':
        return closeSockets(s)
          .set({ state: 'stopped' })
          .log('info', 'removed')
          .emit({ type: 'dispose' })
          .done();
      case 'sleep':
        // The sockets stay bound: the next client waits in the backlog and wakes the vassal.
        return s.set({ state: 'waiting' }).log('info', 'waiting').emit({ type: 'watch-sockets' }).done();
      case 'restart':
        return begin(s, goal.config, at).done();
      case 'fail':
        return fail(s, goal.reason).done();
    }
  }
  if (v.state === 'starting' || v.state === 'reloading') {
    const mine = current(v);
    // Not `=== processes`: with `restart = no` an instance that exited stays down.
    const ready = mine.length > 0 && mine.every((i) => i.state === 'running');
    if (ready) {
      // A reason stays while the file's version is not the one running (a reload that could not start).
      // The last exit goes: a later failure must not be explained by a crash from before this run.
      s.set({
        state: 'running',
        reason: v.config === v.fileConfig ? undefined : v.reason,
        servingConfig: undefined,
        lastExit: undefined,
      });
      s.log('info', 'running', { pids: mine.map((i) => i.pid).join(',') });
      if (v.config.onDemand && v.config.idleMs > 0) {
        s.set({ busyAt: at }).emit({ type: 'arm', timer: { kind: 'idle' }, ms: idleProbeMs(v.config) });
      }
      // Rolling reload: the new generation is ready, retire the old one.
      stopInstances(s, (i) => i.generation !== v.generation);
    }
  }
  return s.done();
}

export function markReady(s: Step, pid: number, at: number): Transition {
  const inst = findPid(s.v, pid);
  if (inst?.state !== 'starting') return s.done();
  s.emit(
    { type: 'cancel', timer: { kind: 'ready-timeout', pid } },
    { type: 'cancel', timer: { kind: 'ready-delay', pid } },
  );
  const running: Instance = { ...inst, state: 'running' };
  s.set({ instances: replaceInstance(s.v, inst, running) });
  afterReady(s, running, at);
  // As systemd does, the watchdog runs from readiness: a slow start is ready-timeout's business.
  const watchdogMs = configOf(s.v, inst).watchdogMs;
  if (watchdogMs !== undefined) s.emit({ type: 'arm', timer: { kind: 'watchdog', pid }, ms: watchdogMs });
  return settle(s, at);
}

/**
 * Generation `generation` cannot start. During a rolling reload the old generation keeps serving;
 * otherwise the vassal stops everything and becomes `failed`.
 */
export function failGeneration(s: Step, generation: number, reason: string, at: number): Transition {
  const v = s.v;
  if (v.stopGoal && v.stopGoal.kind !== 'restart') return settle(s, at);
  const older = v.instances.filter((i) => i.generation < generation && i.state !== 'stopping');
  if (generation === v.generation && older.length > 0 && older[0]) {
    // Abandon the new generation; the old one serves on.
    stopInstances(s, (i) => i.generation === generation);
    s.set({
      generation: older[0].generation,
      state: 'running',
      reason: `reload failed: ${reason}`,
      config: v.servingConfig ?? v.config,
      servingConfig: undefined,
    });
    s.log('error', 'reload-failed', { reason, generation, serving: older[0].generation });
    return settle(s, at);
  }
  return stopAll(s, { kind: 'fail', reason }, at);
}
