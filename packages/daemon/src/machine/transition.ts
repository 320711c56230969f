// The vassal lifecycle as a pure function: transition(vassal, event) -> {vassal, effects}.
// One table says which events each state handles; states that cannot receive an event say so
// explicitly. The handlers live by concern: instance outcomes (instance-events.ts), timers
// (timers.ts), owned sockets (socket-events.ts), file and control events (file-events.ts),
// recycling (recycle.ts: `recycle` only replaces an instance of a `running` vassal); what
// they build transitions from is in builders.ts and step.ts. docs/lifecycle.md mirrors them.
import type { VassalConfig } from '@emperor/config';
import type { Transition, Vassal, VassalEvent, VassalEventType, VassalState } from './types.js';
import { same, type Handler } from './step.js';
import { onExited, onHeartbeat, onReady, onSpawnFailed, onSpawned } from './instance-events.js';
import { onTimer } from './timers.js';
import { onActivate, onBindFailed, onBound, onIdleProbe } from './socket-events.js';
import { onControl, onRemove, onStart, onUpdate } from './file-events.js';
import { onRecycle } from './recycle.js';

export { BACKOFF_RESET_MS } from './backoff.js';

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
    sides: [],
    crons: [],
    restarts: 0,
    backoffStep: 0,
    backoffUntil: undefined,
    lastExit: undefined,
    reason: undefined,
    stopGoal: undefined,
    bound: false,
    bindFailure: undefined,
    binding: false,
    busyAt: undefined,
    recycles: 0,
    lastRecycle: undefined,
    recycleRetryAt: undefined,
  };
}

export function transition(v: Vassal, e: VassalEvent): Transition {
  // The cast is safe: the table is indexed by the event's own type.
  const handler = TABLE[v.state][e.type] as Handler<typeof e.type>;
  return handler(v, e);
}

// ---------------------------------------------------------------------------------------------
// The table: which handler each state gives each event. Instance outcomes are handled alike in
// every state (the instance's own record says what it means); a socket event belongs to one state
// and is ignored, explicitly, in the others (so is `recycle`: a reload, a stop or a backoff is no
// time to replace an instance); file and control events differ by state inside their handlers
// (see docs/lifecycle.md).

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
  waiting:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: onActivate, 'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  starting:  { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: onBound, 'bind-failed': onBindFailed, activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  running:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': onIdleProbe, recycle: onRecycle, ...instanceEvents },
  reloading: { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  stopping:  { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  stopped:   { start: onStart, update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  backoff:   { start: ignore,  update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
  failed:    { start: onStart, update: onUpdate, remove: onRemove, control: onControl, bound: ignore,  'bind-failed': ignore,       activate: ignore,     'idle-probe': ignore,      recycle: ignore,    ...instanceEvents },
};
