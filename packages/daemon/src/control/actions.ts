// `POST /v1/actions`: start, stop, restart or reload vassals, through the same event path as
// file changes (the runner's dispatch). With `wait`, the answer comes when every target has
// reached its goal (the new generation ready, or stopped) or has failed.
import { constants as osConstants } from 'node:os';
import type { Emperor } from '../emperor.js';
import type { ControlAction, Vassal } from '../machine/types.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import { ControlError } from './errors.js';

export const ACTIONS: readonly ControlAction[] = ['start', 'stop', 'restart', 'reload'];

export interface ActionResult {
  readonly name: string;
  readonly action: ControlAction;
  /** False when the vassal failed to reach the goal (with --wait), or cannot act at all. */
  readonly ok: boolean;
  readonly state: string;
  readonly generation: number;
  readonly reason: string | null;
}

type Verdict = { readonly ok: boolean; readonly reason: string | null } | undefined;

/** Where a vassal stands relative to the goal of `action`, given its highest generation before. */
export function judge(action: ControlAction, before: number, v: Vassal): Verdict {
  if (action === 'stop') {
    if (v.state === 'stopped') return { ok: true, reason: null };
    return undefined;
  }
  const fresh = v.lastGeneration > before;
  // The generation this action started was abandoned (it could not be spawned, or a rolling reload
  // failed) and an older one serves on: the file as it is now is not what runs.
  if (fresh && v.generation < v.lastGeneration && v.state !== 'reloading' && v.state !== 'stopping')
    return { ok: false, reason: v.reason ?? 'reload failed' };
  switch (v.state) {
    case 'failed':
      return { ok: false, reason: v.reason ?? 'cannot start' };
    case 'backoff':
      if (fresh) return { ok: false, reason: `crashed (${exitText(v)}); restarting with backoff` };
      if (action === 'start')
        return {
          ok: false,
          reason: `in backoff after it ${exitText(v)}; \`emperor restart\` bypasses the backoff`,
        };
      return undefined;
    case 'waiting':
      return { ok: true, reason: null }; // on-demand: ready means the sockets wait for a client
    case 'running':
      // Not fresh: a `signal:` reload (same generation), or a start of a vassal already running.
      if (fresh || action === 'start' || action === 'reload') return { ok: true, reason: null };
      return undefined;
    case 'stopped':
      return { ok: false, reason: fresh ? (v.reason ?? exitText(v)) : 'stopped' };
    case 'starting':
    case 'reloading':
    case 'stopping':
      return undefined;
  }
}

function exitText(v: Vassal): string {
  const e = v.lastExit;
  if (!e) return 'exited';
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code ?? '?'}`;
}

export interface ActionRequest {
  readonly action: ControlAction;
  readonly names: readonly string[];
  readonly wait: boolean;
  readonly timeoutMs: number;
}

/** Dispatches the action to each vassal; resolves at once, or (wait) when each is settled. */
export function performActions(
  emperor: Emperor,
  req: ActionRequest,
  signal: AbortSignal,
): Promise<ActionResult[]> {
  const runners = emperor.reconciler.runners;
  const pending = new Map<string, { runner: VassalRunner; before: number }>();
  const results = new Map<string, ActionResult>();
  const result = (name: string, ok: boolean, v: Vassal | undefined, reason: string | null): ActionResult => ({
    name,
    action: req.action,
    ok,
    state: v?.state ?? 'failed',
    generation: v?.generation ?? 0,
    reason,
  });
  for (const name of req.names) {
    const runner = runners.get(name);
    if (!runner || runner.disposed) {
      const err = emperor.reconciler.errors.get(name)?.issues[0];
      results.set(
        name,
        result(name, false, undefined, err ? `the vassal file has errors: ${err.message}` : 'gone'),
      );
      continue;
    }
    const before = runner.vassal.lastGeneration;
    runner.dispatch({ type: 'control', action: req.action, at: Date.now() });
    if (!req.wait) results.set(name, result(name, true, runner.vassal, null));
    else pending.set(name, { runner, before });
  }
  const finish = (): ActionResult[] =>
    req.names.map((n) => results.get(n) ?? result(n, false, undefined, 'unknown'));
  if (pending.size === 0) return Promise.resolve(finish());

  return new Promise((resolve, reject) => {
    const check = (): void => {
      for (const [name, { runner, before }] of pending) {
        const v = runner.vassal;
        const verdict = runner.disposed
          ? { ok: false, reason: 'the vassal file was removed' }
          : judge(req.action, before, v);
        if (verdict) {
          results.set(name, result(name, verdict.ok, v, verdict.reason));
          pending.delete(name);
        }
      }
      if (pending.size === 0) {
        cleanup();
        resolve(finish());
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new ControlError(
          'EMP_CONTROL_TIMEOUT',
          `still waiting after ${req.timeoutMs / 1000} s for ${[...pending.keys()].join(', ')}`,
          {
            waiting: [...pending.keys()],
          },
        ),
      );
    }, req.timeoutMs);
    const onAbort = (): void => {
      cleanup();
      resolve([]);
    };
    const unsubscribe = emperor.subscribe(() => {
      check();
    });
    // Removal disposes the runner without a last change for every listener: poll cheaply too.
    const poll = setInterval(check, 500);
    function cleanup(): void {
      clearTimeout(timer);
      clearInterval(poll);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
    }
    signal.addEventListener('abort', onAbort);
    check();
  });
}

export function parseAction(value: unknown): ControlAction {
  if (typeof value === 'string' && (ACTIONS as readonly string[]).includes(value))
    return value as ControlAction;
  throw new ControlError(
    'EMP_CONTROL_BAD_REQUEST',
    `\`action\` must be one of ${ACTIONS.join(', ')}, got ${value === undefined ? 'nothing' : JSON.stringify(value).slice(0, 40)}`,
  );
}

// `POST /v1/signal` (`emperor signal NAME SIG`): a signal to the main process of every live
// instance, as a `signal:` reload sends it; the vassal's state machine is not involved.

export interface SignalResult {
  readonly name: string;
  /** False when the vassal has no live process to signal. */
  readonly ok: boolean;
  readonly state: string;
  readonly pids: readonly number[];
  readonly reason: string | null;
}

/** `SIGHUP`, `HUP`, `hup` or `1`, to the signal's name; anything else is a bad request. */
export function parseSignal(value: unknown): NodeJS.Signals {
  const signals = osConstants.signals as Readonly<Record<string, number>>;
  let name: string | undefined;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d{1,2}$/.test(value)))
    name = Object.keys(signals).find((k) => signals[k] === Number(value));
  else if (typeof value === 'string') {
    const upper = value.toUpperCase();
    name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  }
  if (name !== undefined && name in signals) return name as NodeJS.Signals;
  throw new ControlError(
    'EMP_CONTROL_BAD_REQUEST',
    `\`signal\` must be a signal name or number (\`SIGHUP\`, \`HUP\`, \`1\`), got ${value === undefined ? 'nothing' : JSON.stringify(value).slice(0, 40)}`,
  );
}

export function signalVassals(
  emperor: Emperor,
  names: readonly string[],
  signal: NodeJS.Signals,
): SignalResult[] {
  return names.map((name) => {
    const runner = emperor.reconciler.runners.get(name);
    if (!runner || runner.disposed) {
      const err = emperor.reconciler.errors.get(name)?.issues[0];
      const reason = err ? `not running: the vassal file has errors: ${err.message}` : 'gone';
      return { name, ok: false, state: 'failed', pids: [], reason };
    }
    const v = runner.vassal;
    const pids: number[] = [];
    for (const i of v.instances) {
      if (i.pid === undefined) continue;
      try {
        process.kill(i.pid, signal);
        pids.push(i.pid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    return pids.length > 0
      ? { name, ok: true, state: v.state, pids, reason: null }
      : { name, ok: false, state: v.state, pids, reason: `not running (${v.state})` };
  });
}
