// The converted values of one file, by key, with their lines. The one place where the
// heterogeneous per-key values are typed back through the key table.
import type { KeyName, KeyValue } from './keys.js';

export interface Given<T> {
  readonly value: T;
  readonly line: number;
}

export class Values {
  readonly #values = new Map<KeyName, Given<unknown>[]>();
  readonly #invalid = new Map<KeyName, number>();

  /** `value` comes from `KEYS[key].convert`, which is what makes the typed getters sound. */
  add(key: KeyName, value: unknown, line: number): void {
    const list = this.#values.get(key);
    if (list === undefined) this.#values.set(key, [{ value, line }]);
    else list.push({ value, line });
  }

  /** The key was given but its value was wrong (reported): rules that depend on it stay quiet. */
  markInvalid(key: KeyName, line: number): void {
    if (!this.#invalid.has(key)) this.#invalid.set(key, line);
  }

  invalid(key: KeyName): boolean {
    return this.#invalid.has(key);
  }

  all<K extends KeyName>(key: K): readonly Given<KeyValue<K>>[] {
    // add() stores what KEYS[key].convert returned, so the values have the key's type.
    return (this.#values.get(key) ?? []) as Given<KeyValue<K>>[];
  }

  first<K extends KeyName>(key: K): Given<KeyValue<K>> | undefined {
    return this.all(key)[0];
  }

  get<K extends KeyName>(key: K): KeyValue<K> | undefined {
    return this.first(key)?.value;
  }

  line(key: KeyName): number | undefined {
    return this.first(key)?.line ?? this.#invalid.get(key);
  }
}
