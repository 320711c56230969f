// Drives the pure machine as the runner would: each event's transition replaces the vassal. The
// machine's tests extend it with the outcomes they feed back (spawned, ready, bound).
import type { VassalConfig } from '@emperor/config';
import { createVassal, transition } from '../../src/machine/transition.js';
import type { Effect, Vassal, VassalEvent } from '../../src/machine/types.js';

export class Drive {
  v: Vassal;
  /** Every effect but log lines, in order, over the whole drive. */
  readonly effects: Effect[] = [];
  constructor(config: VassalConfig) {
    this.v = createVassal(config);
  }
  /** The event's effects, log lines included. */
  sendAll(e: VassalEvent): Effect[] {
    const t = transition(this.v, e);
    this.v = t.vassal;
    this.effects.push(...t.effects.filter((x) => x.type !== 'log'));
    return [...t.effects];
  }
  /** The event's effects without log lines. */
  send(e: VassalEvent): Effect[] {
    return this.sendAll(e).filter((x) => x.type !== 'log');
  }
}

/** Pids (or any ids) from `start` up. */
export function counter(start = 100): () => number {
  let n = start;
  return () => n++;
}
