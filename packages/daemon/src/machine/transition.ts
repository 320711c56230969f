// The vassal lifecycle as a pure function: transition(vassal, event) -> {vassal, effects}.
// One table says which events each state handles; states that cannot receive an event say so
// explicitly. Shared bookkeeping (an instance spawned, ready or gone) lives in small helpers, and
// `settle` derives what follows once the instances have changed. docs/lifecycle.md mirrors this file.
import type { VassalConfig } from '@emperor/config';
import type {
  Effect,
  Instance,
  StopGoal,
  Transition,
  Vassal,
  VassalEvent,
  VassalEventType,
  VassalState,
} from './types.js';
import { sameProcessSpec, sameSockets } from './process-spec.js';

/** An instance up at least this long resets the backoff (SPEC §4). */
export const BACKOFF_RESET_MS = 10_000;

type EventOf<T extends VassalEventType> = Extract<VassalEvent, { type: T }>;
type Handler<T extends VassalEventType> = (v: Vassal, e: EventOf<T>) => Transition;
type Table = { readonly [S in VassalState]: { readonly [T in VassalEventType]: Handler<T> } };

export function createVassal(config: VassalConfig): Vassal {
  return {
    name: config.name,
    state: 'stopped',
    config,
    fileConfig: config,
    servingConfig: undefined,
    generation: 0,
    lastGeneration: 0,
    instances: [],
    restarts: 0,
    backoffStep: 0,
    backoffUntil: undefined,
    lastExit: undefined,
    reason: undefined,
    stopGoal: undefined,
    bound: false,
    binding: false,
    busyAt: undefined,
  };
}

export function transition(v: Vassal, e: VassalEvent): Transition {
  // The cast is safe: the table is indexed by the event's own type.
  const handler = TABLE[v.state][e.type] as Handler<typeof e.type>;
  return handler(v, e);
}

// ---------------------------------------------------------------------------------------------
// Small builders

class Step {
  readonly effects: Effect[] = [];
  constructor(public v: Vassal) {}
  set(patch: Partial<Vassal>): this {
    this.v = { ...this.v, ...patch };
    return this;
  }
  emit(...effects: Effect[]): this {
    this.effects.push(...effects);
    return this;
  }
  log(
    level: 'info' | 'warn' | 'error',
    event: string,
    fields: Record<string, string | number | boolean | null | undefined> = {},
  ): this {
    return this.emit({ type: 'log', level, event, fields: { generation: this.v.generation, ...fields } });
  }
  done(): Transition {
    return { vassal: this.v, effects: this.effects };
  }
}

const same = (v: Vassal): Transition => ({ vassal: v, effects: [] });

function current(v: Vassal): Instance[] {
  return v.instances.filter((i) => i.generation === v.generation && i.state !== 'stopping');
}

function findPid(v: Vassal, pid: number): Instance | undefined {
  return v.instances.find((i) => i.pid === pid);
}

function replaceInstance(v: Vassal, old: Instance, next: Instance | undefined): readonly Instance[] {
  return next ? v.instances.map((i) => (i === old ? next : i)) : v.instances.filter((i) => i !== old);
}

/** Spawns the given slots of `generation` with `config`. */
function spawnSlots(
  s: Step,
  config: VassalConfig,
  generation: number,
  indexes: readonly number[],
  at: number,
): Step {
  const fresh: Instance[] = indexes.map((index) => ({
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
function startGeneration(s: Step, config: VassalConfig, at: number): Step {
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
  return spawnSlots(s, config, generation, indexes, at);
}

/** The first state of a vassal that is meant to run: bind its sockets if needed, then wait or start. */
function begin(s: Step, config: VassalConfig, at: number): Step {
  s.emit({ type: 'cancel', timer: { kind: 'retry' } }, { type: 'cancel', timer: { kind: 'backoff' } });
  s.set({ reason: undefined, stopGoal: undefined });
  if (config.sockets.length > 0 && !(s.v.bound && sameSockets(s.v.config, config))) {
    // The outcome (`bound` or `bind-failed`) continues in afterBind or fail.
    return s.set({ config, state: 'starting', binding: true }).emit({ type: 'bind', config });
  }
  if (config.sockets.length === 0 && s.v.bound) closeSockets(s);
  return afterBind(s, config, at);
}

function afterBind(s: Step, config: VassalConfig, at: number): Step {
  if (config.onDemand) {
    return s.set({ config, state: 'waiting' }).log('info', 'waiting').emit({ type: 'watch-sockets' });
  }
  return startGeneration(s, config, at);
}

function closeSockets(s: Step): Step {
  if (s.v.bound || s.v.binding) s.emit({ type: 'close-sockets' });
  return s.set({ bound: false, binding: false });
}

/** Cannot start: `failed` (sockets closed, clients refused) until a retry, a change or a restart. */
function fail(s: Step, reason: string, retryMs = s.v.config.restartDelayMaxMs): Step {
  return closeSockets(s)
    .set({ state: 'failed', reason })
    .log('error', 'failed', { reason, retry_in_ms: retryMs })
    .emit({ type: 'arm', timer: { kind: 'retry' }, ms: retryMs });
}

/** How often an on-demand vassal with `idle` looks for clients. */
function idleProbeMs(config: VassalConfig): number {
  return Math.min(Math.max(config.idleMs / 4, 100), 1000);
}

/** Sends the stop signal to the instances matching `which` (not already stopping). */
function stopInstances(s: Step, which: (i: Instance) => boolean): Step {
  const instances = s.v.instances.map((i): Instance => {
    if (i.state === 'stopping' || !which(i)) return i;
    if (i.pid !== undefined) {
      s.emit(
        { type: 'cancel', timer: { kind: 'ready-timeout', pid: i.pid } },
        { type: 'cancel', timer: { kind: 'ready-delay', pid: i.pid } },
        { type: 'cancel', timer: { kind: 'watchdog', pid: i.pid } },
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
function stopAll(s: Step, goal: StopGoal, at: number): Transition {
  s.emit({ type: 'cancel', timer: { kind: 'backoff' } }, { type: 'cancel', timer: { kind: 'retry' } });
  stopInstances(s, () => true).set({ stopGoal: goal, backoffUntil: undefined, binding: false });
  if (goal.kind === 'restart') s.set({ state: 'reloading' });
  else s.set({ state: 'stopping' });
  return settle(s, at);
}

/** Derives what follows from the instances left: a finished stop, or a generation now fully ready. */
function settle(s: Step, at: number): Transition {
  const v = s.v;
  if (v.stopGoal) {
    if (v.instances.length > 0) return s.done();
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

// ---------------------------------------------------------------------------------------------
// Instance outcomes

const onSpawned: Handler<'spawned'> = (v, e) => {
  const s = new Step(v);
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

function markReady(s: Step, pid: number, at: number): Transition {
  const inst = findPid(s.v, pid);
  if (inst?.state !== 'starting') return s.done();
  s.emit(
    { type: 'cancel', timer: { kind: 'ready-timeout', pid } },
    { type: 'cancel', timer: { kind: 'ready-delay', pid } },
  );
  s.set({ instances: replaceInstance(s.v, inst, { ...inst, state: 'running' }) });
  // As systemd does, the watchdog runs from readiness: a slow start is ready-timeout's business.
  const watchdogMs = configOf(s.v, inst).watchdogMs;
  if (watchdogMs !== undefined) s.emit({ type: 'arm', timer: { kind: 'watchdog', pid }, ms: watchdogMs });
  return settle(s, at);
}

/** The config an instance was started with: during a rolling reload the old ones have their own. */
function configOf(v: Vassal, inst: Instance): VassalConfig {
  return inst.generation === v.generation ? v.config : (v.servingConfig ?? v.config);
}

const onReady: Handler<'ready'> = (v, e) => markReady(new Step(v), e.pid, e.at);

const onHeartbeat: Handler<'heartbeat'> = (v, e) => {
  const inst = findPid(v, e.pid);
  if (inst?.state !== 'running') return same(v); // before readiness no watchdog runs
  const ms = configOf(v, inst).watchdogMs;
  if (ms === undefined) return same(v);
  return new Step(v).emit({ type: 'arm', timer: { kind: 'watchdog', pid: e.pid }, ms }).done();
};

const onSpawnFailed: Handler<'spawn-failed'> = (v, e) => {
  const s = new Step(v);
  const inst = v.instances.find(
    (i) => i.generation === e.generation && i.index === e.index && i.pid === undefined,
  );
  if (inst) s.set({ instances: replaceInstance(v, inst, undefined) });
  // The instance's own generation: an earlier failure of its generation may have restored an older one.
  s.log('error', 'spawn-failed', { instance: e.index, generation: e.generation, reason: e.reason });
  if (!inst || inst.state === 'stopping') return settle(s, e.at);
  return failGeneration(s, e.generation, e.reason, e.at);
};

/**
 * Generation `generation` cannot start. During a rolling reload the old generation keeps serving;
 * otherwise the vassal stops everything and becomes `failed`.
 */
function failGeneration(s: Step, generation: number, reason: string, at: number): Transition {
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

/** 126/127 is how a wrapper shell reports a command it cannot find or run. */
function notRunnable(code: number | null): string | undefined {
  if (code === 127) return 'command not found (exit status 127)';
  if (code === 126) return 'command not executable (exit status 126)';
  return undefined;
}

const onExited: Handler<'exited'> = (v, e) => {
  const s = new Step(v);
  const inst = findPid(v, e.pid);
  if (!inst) return s.done();
  s.set({ instances: replaceInstance(v, inst, undefined) });
  s.emit(
    { type: 'kill-group', pid: e.pid },
    { type: 'cancel', timer: { kind: 'stop-timeout', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'ready-timeout', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'ready-delay', pid: e.pid } },
    { type: 'cancel', timer: { kind: 'watchdog', pid: e.pid } },
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
    return settle(s.log('info', 'exit', fields), e.at);
  }
  s.set({ lastExit: exit }).log('warn', 'exit', { ...fields, uptime_ms: e.at - inst.startedAt });
  if (inst.generation !== v.generation) return settle(s, e.at); // a retired generation: nothing to restart

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

// ---------------------------------------------------------------------------------------------
// Timers

const onTimer: Handler<'timer'> = (v, e) => {
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
    case 'retry':
      if (v.state !== 'failed') return s.done();
      return begin(s, v.fileConfig, e.at).done();
    case 'stop-timeout':
      if (findPid(v, t.pid)?.state !== 'stopping') return s.done();
      return s.log('warn', 'stop-timeout', { pid: t.pid }).emit({ type: 'kill-group', pid: t.pid }).done();
    case 'ready-delay':
      return markReady(s, t.pid, e.at);
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

// ---------------------------------------------------------------------------------------------
// Owned sockets

/** Only in `starting` (the table), and only for the bind still out. */
const onBound: Handler<'bound'> = (v, e) => {
  if (!v.binding) return same(v); // a stop or another start came first
  return afterBind(new Step(v).set({ binding: false, bound: true, backoffStep: 0 }), v.config, e.at).done();
};

const onBindFailed: Handler<'bind-failed'> = (v, e) => {
  if (!v.binding) return same(v);
  // Retried with backoff, not after restart-delay-max: the usual holder of the address is another
  // vassal stopping right now (a renamed file, a port moved between vassals).
  const c = v.config;
  const retryMs = Math.min(c.restartDelayMs * 2 ** v.backoffStep, c.restartDelayMaxMs);
  return fail(new Step(v).set({ backoffStep: v.backoffStep + 1 }), e.reason, retryMs).done();
};

/** Only in `waiting` (the table). */
const onActivate: Handler<'activate'> = (v, e) => {
  return startGeneration(new Step(v).log('info', 'activate'), v.config, e.at).done();
};

/** Only in `running` (the table). */
const onIdleProbe: Handler<'idle-probe'> = (v, e) => {
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

// ---------------------------------------------------------------------------------------------
// File and control events

const onStart: Handler<'start'> = (v, e) => begin(new Step(v), v.config, e.at).done();

/**
 * A reload or restart whose config cannot be spawned (the runner's precheck): nothing is stopped
 * or spawned, as with a config error. The attempt uses up its generation number, so that `--wait`
 * and `status` can tell that the generation serving is not the file's.
 */
function refuse(s: Step, action: 'reload' | 'restart', problem: string): Transition {
  const generation = s.v.lastGeneration + 1;
  s.set({ lastGeneration: generation, reason: `${action} failed: ${problem}` });
  return s.log('error', 'reload-failed', { reason: problem, generation, serving: s.v.generation }).done();
}

/** Applies a new config to a vassal that has (or is starting) a generation. */
function reload(
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
    return s.set({ config }).done();
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

const onUpdate: Handler<'update'> = (v0, e) => {
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

const onRemove: Handler<'remove'> = (v, e) => stopAll(new Step(v), { kind: 'remove' }, e.at);

/** `start` or `reload` while stopping: start again once the old processes are gone (not after a removal). */
function startAfterStop(s: Step): Transition {
  if (s.v.stopGoal?.kind === 'remove') return s.done();
  return s.set({ stopGoal: { kind: 'restart', config: s.v.fileConfig }, state: 'reloading' }).done();
}

/** Every action but `stop` applies the file as it is now (`fileConfig`), not the version serving. */
const onControl: Handler<'control'> = (v, e) => {
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

// ---------------------------------------------------------------------------------------------
// The table: which handler each state gives each event. Instance outcomes are handled alike in
// every state (the instance's own record says what it means); a socket event belongs to one state
// and is ignored, explicitly, in the others; file and control events differ by state inside their
// handlers (see docs/lifecycle.md).

/**
 * An event that means nothing in this state: a client waking a vassal that is not waiting, an
 * idle probe of one that no longer runs, the outcome of a bind that a stop overtook.
 */
const ignore = same;

/** Outcomes of an instance's own life: the instance's record says what they mean, in any state. */
const instanceEvents = {
  spawned: onSpawned,
  'spawn-failed': onSpawnFailed,
  ready: onReady,
  heartbeat: onHeartbeat,
  exited: onExited,
  timer: onTimer,
} as const;

// prettier-ignore
const TABLE: Table = {
  waiting:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: onActivate, 'idle-probe': ignore,      ...instanceEvents },
  starting:  { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: onBound, 'bind-failed': onBindFailed, activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
  running:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': onIdleProbe, ...instanceEvents },
  reloading: { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
  stopping:  { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
  stopped:   { start: onStart, update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
  backoff:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
  failed:    { start: onStart, update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      ...instanceEvents },
};
