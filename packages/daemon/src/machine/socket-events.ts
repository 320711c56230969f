// Owned sockets: outcomes of a bind, a client waking a waiting vassal, the idle probe.
import { Step, idleProbeMs, same, type Handler } from './step.js';
import { afterBind, fail, startGeneration, stopAll } from './builders.js';

/** Only in `starting` (the table), and only for the bind still out. */
export const onBound: Handler<'bound'> = (v, e) => {
  if (!v.binding) return same(v); // a stop or another start came first
  return afterBind(new Step(v).set({ binding: false, bound: true, backoffStep: 0 }), v.config, e.at).done();
};

export const onBindFailed: Handler<'bind-failed'> = (v, e) => {
  if (!v.binding) return same(v);
  // Retried with backoff, not after restart-delay-max: the usual holder of the address is another
  // vassal stopping right now (a renamed file, a port moved between vassals).
  const c = v.config;
  const retryMs = Math.min(c.restartDelayMs * 2 ** v.backoffStep, c.restartDelayMaxMs);
  const s = new Step(v).set({ backoffStep: v.backoffStep + 1, bindFailure: e.code });
  return fail(s, e.reason, retryMs).done();
};

/** Only in `waiting` (the table). */
export const onActivate: Handler<'activate'> = (v, e) => {
  return startGeneration(new Step(v).log('info', 'activate'), v.config, e.at).done();
};

/** Only in `running` (the table). */
export const onIdleProbe: Handler<'idle-probe'> = (v, e) => {
  const s = new Step(v);
  const busyAt = e.busy ? e.at : (v.busyAt ?? e.at);
  if (e.at - busyAt >= v.config.idleMs) {
    return stopAll(s.log('info', 'idle', { idle_ms: e.at - busyAt }), { kind: 'sleep' }, e.at);
  }
  return s
    .set({ busyAt })
    .emit({ type: 'arm', timer: { kind: 'idle' }, ms: idleProbeMs(v.config) })
    .done();
};
