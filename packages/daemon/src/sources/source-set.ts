// Several sources as one desired set: each update replaces only its own source's part, and a name
// defined by two sources goes to the one that defined it first (in `--vassals` order when both
// appear at once), exactly as between two directories of one source.
import type { DuplicateDefinition, SourceUpdate, VassalDefinition } from './source.js';

export class SourceSet {
  readonly #latest: (SourceUpdate | undefined)[];
  readonly #onUpdate: (merged: SourceUpdate) => void;
  /** Which source owns each name: the first to define it keeps it while it does. */
  readonly #owner = new Map<string, number>();
  /** Until every source has started, updates are only kept: the first merge sees them all. */
  #open = false;

  constructor(count: number, onUpdate: (merged: SourceUpdate) => void) {
    this.#latest = Array.from({ length: count }, () => undefined);
    this.#onUpdate = onUpdate;
  }

  /** The handler for source number `index` (its position among `--vassals`). */
  updater(index: number): (update: SourceUpdate) => void {
    return (update) => {
      this.#latest[index] = update;
      if (this.#open) this.#onUpdate(this.#merge(update.changedAt));
    };
  }

  /** Every source has started: hand on the whole set once, then every update as it comes. */
  open(): void {
    this.#open = true;
    const changedAt = new Map<string, number>();
    for (const u of this.#latest) for (const [origin, at] of u?.changedAt ?? []) changedAt.set(origin, at);
    this.#onUpdate(this.#merge(changedAt));
  }

  #merge(changedAt: ReadonlyMap<string, number>): SourceUpdate {
    for (const [name, index] of this.#owner)
      if (!this.#latest[index]?.vassals.has(name)) this.#owner.delete(name);
    this.#latest.forEach((u, index) => {
      for (const name of u?.vassals.keys() ?? []) if (!this.#owner.has(name)) this.#owner.set(name, index);
    });
    const vassals = new Map<string, VassalDefinition>();
    const duplicates: DuplicateDefinition[] = [];
    this.#latest.forEach((u, index) => {
      if (!u) return;
      duplicates.push(...u.duplicates);
      for (const [name, def] of u.vassals) {
        const owner = this.#owner.get(name) ?? index;
        const first = this.#latest[owner]?.vassals.get(name);
        if (owner === index || !first) vassals.set(name, def);
        else duplicates.push({ name, origin: def.origin, firstOrigin: first.origin });
      }
    });
    return { vassals, duplicates, changedAt };
  }
}
