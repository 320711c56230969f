// File and control events: the file appeared, changed or is gone; `emperor start|stop|restart|reload`.
// They differ by state inside their handlers (see docs/lifecycle.md).
import type { VassalConfig } from '@emperor/config';
import type { Transition, Vassal } from './types.js';
import { sameButSides, sameProcessSpec, sameSockets } from './process-spec.js';
import { syncSides } from './side-processes.js';
import { Step, current, type Handler } from './step.js';
import { begin, settle, startGeneration, stopAll, stopInstances } from './builders.js';

export const onStart: Handler<'start'> = (v, e) => begin(new Step(v), v.config, e.at).done();

/**
 * A reload or restart whose config cannot be spawned (the runner's precheck): nothing is stopped
 * or spawned, as with a config error. The attempt uses up its generation number, so that `--wait`
 * and `status` can tell that the generation serving is not the file's.
 */
export function refuse(s: Step, action: 'reload' | 'restart', problem: string): Transition {
  const generation = s.v.lastGeneration + 1;
  s.set({ lastGeneration: generation, reason: `${action} failed: ${problem}` });
  return s.log('error', 'reload-failed', { reason: problem, generation, serving: s.v.generation }).done();
}

/** Applies a new config to a vassal that has (or is starting) a generation. */
export function reload(
  v: Vassal,
  config: VassalConfig,
  at: number,
  touched: boolean,
  unrunnable: string | undefined,
): Transition {
  const s = new Step(v);
  s.log('info', 'reload', { strategy: config.reload.kind, touched });
  const serving = current(v).filter((i) => i.generation === v.generation);
  const strategy = config.reload;
  if (strategy.kind === 'signal' && v.state === 'running' && sameProcessSpec(v.config, config)) {
    // The app reloads itself: same processes, same generation.
    for (const i of serving)
      if (i.pid !== undefined) s.emit({ type: 'signal', pid: i.pid, signal: strategy.signal });
    return syncSides(s.set({ config }), config, at).done();
  }
  if (v.state === 'running' && sameButSides(v.config, config)) {
    // Only `attach-daemon` lines changed: the app is left alone, the changed lines are applied.
    return syncSides(s.set({ config }), config, at).done();
  }
  // A restart already under way has nothing left to protect: its config is replaced below.
  if (unrunnable !== undefined && v.stopGoal === undefined) return refuse(s, 'reload', unrunnable);
  // New sockets mean new fds for every instance: only a restart can hand them over.
  const canRoll =
    config.reload.kind === 'rolling' && config.sockets.length > 0 && sameSockets(v.config, config);
  if (canRoll && (v.state === 'running' || v.state === 'reloading')) {
    // Drop a half-started newer generation; the serving one stays until the next is ready.
    const servingGen =
      v.state === 'reloading'
        ? v.instances
            .filter((i) => i.generation < v.generation && i.state !== 'stopping')
            .map((i) => i.generation)[0]
        : v.generation;
    if (servingGen !== undefined && servingGen !== v.generation)
      stopInstances(s, (i) => i.generation === v.generation);
    return settle(startGeneration(s, config, at), at);
  }
  return stopAll(s, { kind: 'restart', config }, at);
}

export const onUpdate: Handler<'update'> = (v0, e) => {
  const v: Vassal = { ...v0, fileConfig: e.config };
  const touched = v.config === e.config;
  switch (v.state) {
    case 'starting':
    case 'running':
    case 'reloading':
    case 'backoff':
      return reload(v, e.config, e.at, touched, e.unrunnable);
    case 'waiting': {
      // Rebinds only if the sockets changed; otherwise waits on, with the new config.
      const s = new Step(v).log('info', 'reload', { touched });
      if (e.unrunnable !== undefined) return refuse(s, 'reload', e.unrunnable);
      return begin(s, e.config, e.at).done();
    }
    case 'stopped':
    case 'failed':
      return begin(new Step(v), e.config, e.at).done();
    case 'stopping':
      // The file is back or changed while stopping: start it once the old processes are gone.
      return new Step(v).set({ stopGoal: { kind: 'restart', config: e.config }, state: 'reloading' }).done();
  }
};

export const onRemove: Handler<'remove'> = (v, e) => stopAll(new Step(v), { kind: 'remove' }, e.at);

/** `start` or `reload` while stopping: start again once the old processes are gone (not after a removal). */
export function startAfterStop(s: Step): Transition {
  if (s.v.stopGoal?.kind === 'remove') return s.done();
  return s.set({ stopGoal: { kind: 'restart', config: s.v.fileConfig }, state: 'reloading' }).done();
}

/** Every action but `stop` applies the file as it is now (`fileConfig`), not the version serving. */
export const onControl: Handler<'control'> = (v, e) => {
  const s = new Step(v).set({ backoffStep: e.action === 'restart' ? 0 : v.backoffStep });
  const idle = v.state === 'stopped' || v.state === 'failed';
  const file = v.fileConfig;
  switch (e.action) {
    case 'stop':
      if (v.state === 'stopped') return s.done();
      return stopAll(s, { kind: 'hold' }, e.at);
    case 'start':
      if (idle) return begin(s, file, e.at).done();
      return v.state === 'stopping' ? startAfterStop(s) : s.done();
    case 'restart':
      if (idle) return begin(s, file, e.at).done();
      if (e.unrunnable !== undefined && v.stopGoal === undefined) return refuse(s, 'restart', e.unrunnable);
      return stopAll(s, { kind: 'restart', config: file }, e.at);
    case 'reload':
      if (idle) return begin(s, file, e.at).done();
      if (v.state === 'stopping') return startAfterStop(s);
      if (v.state === 'waiting') {
        if (file === v.config) return s.done();
        if (e.unrunnable !== undefined) return refuse(s, 'reload', e.unrunnable);
        return begin(s.log('info', 'reload', { touched: false }), file, e.at).done();
      }
      return reload(s.v, file, e.at, file === v.config, e.unrunnable);
  }
};
