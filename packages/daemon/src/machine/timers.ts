// A timer of the vassal's fired: backoff, retry, and the per-instance deadlines.
import { Step, current, findPid, configOf, type Handler } from './step.js';
import { findSide, onSideBackoffOver } from './side-processes.js';
import { onCronDue } from './cron-jobs.js';
import { begin, failGeneration, markReady, spawnSlots } from './builders.js';
import { onLifetime } from './recycle.js';

export const onTimer: Handler<'timer'> = (v, e) => {
  const s = new Step(v);
  const t = e.timer;
  switch (t.kind) {
    case 'backoff': {
      if (v.state !== 'backoff') return s.done();
      const alive = new Set(current(v).map((i) => i.index));
      const missing = Array.from({ length: v.config.processes }, (_, i) => i).filter((i) => !alive.has(i));
      s.set({ state: 'starting', backoffUntil: undefined, restarts: v.restarts + missing.length });
      return spawnSlots(s, v.config, v.generation, missing, e.at).done();
    }
    case 'side-backoff':
      return onSideBackoffOver(s, t.index, e.at).done();
    case 'cron':
      return onCronDue(s, t.index, e.at).done();
    case 'retry':
      if (v.state !== 'failed') return s.done();
      return begin(s, v.fileConfig, e.at).done();
    case 'stop-timeout':
      if ((findPid(v, t.pid) ?? findSide(v, t.pid))?.state !== 'stopping') return s.done();
      return s.log('warn', 'stop-timeout', { pid: t.pid }).emit({ type: 'kill-group', pid: t.pid }).done();
    case 'ready-delay':
      return markReady(s, t.pid, e.at);
    case 'lifetime':
      return onLifetime(s, t.pid, e.at);
    case 'idle':
      return v.state === 'running' ? s.emit({ type: 'probe-idle' }).done() : s.done();
    case 'watchdog': {
      const inst = findPid(v, t.pid);
      if (inst === undefined || inst.state === 'stopping') return s.done();
      // Hung: kill the whole group; its exit goes through the usual restart and backoff.
      return s
        .set({
          reason: `instance ${inst.index} sent no WATCHDOG=1 within ${configOf(v, inst).watchdogMs ?? 0} ms`,
        })
        .log('warn', 'watchdog', { pid: t.pid, instance: inst.index })
        .emit({ type: 'kill-group', pid: t.pid })
        .done();
    }
    case 'ready-timeout': {
      const inst = findPid(v, t.pid);
      if (inst?.state !== 'starting') return s.done();
      const reason = `instance ${inst.index} not ready within ${configOf(v, inst).readyTimeoutMs / 1000} s`;
      s.set({ reason }).log('error', 'ready-timeout', { pid: t.pid });
      if (
        inst.generation === v.generation &&
        v.instances.some((i) => i.generation < inst.generation && i.state !== 'stopping')
      ) {
        return failGeneration(s, inst.generation, reason, e.at);
      }
      // Counts as a failed start: its exit goes through the usual backoff.
      return s.emit({ type: 'kill-group', pid: t.pid }).done();
    }
  }
};
