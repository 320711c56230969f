// The builder every handler uses (a vassal and the effects so far), the handler types, and the
// queries over a vassal's instances that handlers share.
import type { VassalConfig } from '@emperor/config';
import type { Effect, Instance, Transition, Vassal, VassalEvent, VassalEventType } from './types.js';

export type EventOf<T extends VassalEventType> = Extract<VassalEvent, { type: T }>;
export type Handler<T extends VassalEventType> = (v: Vassal, e: EventOf<T>) => Transition;

export class Step {
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

export const same = (v: Vassal): Transition => ({ vassal: v, effects: [] });

export function current(v: Vassal): Instance[] {
  return v.instances.filter((i) => i.generation === v.generation && i.state !== 'stopping');
}

export function findPid(v: Vassal, pid: number): Instance | undefined {
  return v.instances.find((i) => i.pid === pid);
}

export function replaceInstance(v: Vassal, old: Instance, next: Instance | undefined): readonly Instance[] {
  return next ? v.instances.map((i) => (i === old ? next : i)) : v.instances.filter((i) => i !== old);
}

/** The config an instance was started with: during a rolling reload the old ones have their own. */
export function configOf(v: Vassal, inst: Instance): VassalConfig {
  return inst.generation === v.generation ? v.config : (v.servingConfig ?? v.config);
}

/** How often an on-demand vassal with `idle` looks for clients. */
export function idleProbeMs(config: VassalConfig): number {
  return Math.min(Math.max(config.idleMs / 4, 100), 1000);
}
