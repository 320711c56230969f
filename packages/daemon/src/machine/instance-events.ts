// Outcomes of an instance's own life (spawned, ready, heartbeat, exited): handled alike in every
// state, since the instance's own record says what they mean.
import { BACKOFF_RESET_MS } from './backoff.js';
import { Step, current, findPid, replaceInstance, configOf, same, type Handler } from './step.js';
import { failGeneration, markReady, settle, stopAll, stopInstances } from './builders.js';
import type { Instance } from './types.js';
import { findSide, onSideExited, onSideSpawnFailed, onSideSpawned } from './side-processes.js';
import { onRecycledExit, replacementFailed } from './recycle.js';

export const onSpawned: Handler<'spawned'> = (v, e) => {
  const s = new Step(v);
  if (e.kind !== undefined && e.kind !== 'app') return settle(onSideSpawned(s, e.index, e.pid, e.at), e.at);
  const inst = v.instances.find(
    (i) => i.generation === e.generation && i.index === e.index && i.pid === undefined,
  );
  if (!inst) {
    // Never leak a process we have no record of.
    return s.log('warn', 'unexpected-spawn', { pid: e.pid }).emit({ type: 'kill-group', pid: e.pid }).done();
  }
  const withPid: Instance = { ...inst, pid: e.pid, startedAt: e.at };
  s.set({ instances: replaceInstance(v, inst, withPid) });
  s.log('info', 'spawn', { pid: e.pid, instance: e.index, generation: e.generation });
  const config = configOf(v, inst);
  if (inst.state === 'stopping') {
    stopInstances(
      s.set({ instances: replaceInstance(s.v, withPid, { ...withPid, state: 'starting' }) }),
      (i) => i.pid === e.pid,
    );
    return settle(s, e.at);
  }
  const ready = config.ready;
  switch (ready.kind) {
    case 'started':
      return markReady(s, e.pid, e.at);
    case 'delay':
      s.emit({ type: 'arm', timer: { kind: 'ready-delay', pid: e.pid }, ms: ready.ms });
      break;
    case 'fd':
    case 'notify':
      break;
  }
  s.emit({ type: 'arm', timer: { kind: 'ready-timeout', pid: e.pid }, ms: config.readyTimeoutMs });
  return s.done();
};

export const onReady: Handler<'ready'> = (v, e) => markReady(new Step(v), e.pid, e.at);

export const onHeartbeat: Handler<'heartbeat'> = (v, e) => {
  const inst = findPid(v, e.pid);
  if (inst?.state !== 'running') return same(v); // before readiness no watchdog runs
  const ms = configOf(v, inst).watchdogMs;
  if (ms === undefined) return same(v);
  return new Step(v).emit({ type: 'arm', timer: { kind: 'watchdog', pid: e.pid }, ms }).done();
};

export const onSpawnFailed: Handler<'spawn-failed'> = (v, e) => {
  const s = new Step(v);
  if (e.kind !== undefined && e.kind !== 'app')
    return settle(onSideSpawnFailed(s, e.index, e.reason, e.at), e.at);
  const inst = v.instances.find(
    (i) => i.generation === e.generation && i.index === e.index && i.pid === undefined,
  );
  if (inst) s.set({ instances: replaceInstance(v, inst, undefined) });
  // The instance's own generation: an earlier failure of its generation may have restored an older one.
  s.log('error', 'spawn-failed', { instance: e.index, generation: e.generation, reason: e.reason });
  if (!inst || inst.state === 'stopping') return settle(s, e.at);
  // A recycling replacement that cannot start: the instance it replaces serves on.
  if (replacementFailed(s, inst, e.reason, e.at)) return settle(s, e.at);
  return failGeneration(s, e.generation, e.reason, e.at);
};

/** 126/127 is how a wrapper shell reports a command it cannot find or run. */
export function notRunnable(code: number | null): string | undefined {
  if (code === 127) return 'command not found (exit status 127)';
  if (code === 126) return 'command not executable (exit status 126)';
  return undefined;
}

export const onExited: Handler<'exited'> = (v, e) => {
  const s = new Step(v);
  const inst = findPid(v, e.pid);
  if (!inst) {
    const side = findSide(v, e.pid);
    return side ? settle(onSideExited(s, side, e.code, e.signal, e.at), e.at) : s.done();
  }
  s.set({ instances: replaceInstance(v, inst, undefined) });
  s.emit(
    { type: 'kill-group', pid: e.pid },
    { type: 'cancel', timer: { kind: 'stop-timeout', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'ready-timeout', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'ready-delay', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'watchdog', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'lifetime', pid: e.pid } },
  );
  const exit = { code: e.code, signal: e.signal, at: e.at };
  const fields = {
    pid: e.pid,
    instance: inst.index,
    generation: inst.generation,
    code: e.code,
    signal: e.signal,
  };
  if (inst.state === 'stopping') {
    onRecycledExit(s.log('info', 'exit', fields), inst, e.at); // stop-then-start: the replacement starts
    return settle(s, e.at);
  }
  s.set({ lastExit: exit }).log('warn', 'exit', { ...fields, uptime_ms: e.at - inst.startedAt });
  if (inst.generation !== v.generation) return settle(s, e.at); // a retired generation: nothing to restart
  if (onRecycledExit(s, inst, e.at)) return settle(s, e.at);

  const cannotRun = notRunnable(e.code);
  if (cannotRun) return failGeneration(s, inst.generation, cannotRun, e.at);
  if (
    v.state === 'reloading' &&
    v.instances.some((i) => i.generation < inst.generation && i.state !== 'stopping')
  ) {
    // Whatever the restart policy says, a new generation that loses an instance before all of it
    // is ready is not worth the serving one: it is abandoned and the old one serves on. (Backoff
    // here would leave `reloading` with the old generation still up, and the next change of the
    // file would then restart, stopping the generation that serves.)
    const when = inst.state === 'starting' ? 'before it was ready' : 'before its generation was ready';
    return failGeneration(s, inst.generation, `instance ${inst.index} exited ${when}`, e.at);
  }

  const config = v.config;
  if (config.onDemand && e.code === 0) {
    // An on-demand app that exits cleanly goes back to waiting for the next client.
    return stopAll(s, { kind: 'sleep' }, e.at);
  }
  const failed = e.code !== 0 || e.signal !== null;
  const again = config.restart === 'always' || (config.restart === 'on-failure' && failed);
  if (!again) {
    if (current(s.v).length > 0) return settle(s, e.at);
    return stopAll(s, { kind: 'exit' }, e.at);
  }
  const step = e.at - inst.startedAt >= BACKOFF_RESET_MS ? 0 : v.backoffStep;
  const delay = Math.min(config.restartDelayMs * 2 ** step, config.restartDelayMaxMs);
  s.set({ state: 'backoff', backoffStep: step + 1, backoffUntil: e.at + delay });
  s.log('warn', 'backoff', { delay_ms: delay });
  return s.emit({ type: 'arm', timer: { kind: 'backoff' }, ms: delay }).done();
};
