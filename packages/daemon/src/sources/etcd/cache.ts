// The last set read from etcd, kept on disk so that an emperor started while etcd is unreachable
// runs what it ran before (docs/fleet.md, "Outages"). Written atomically (temporary file, fsync,
// rename) after every change; values may hold secrets, so the file is the emperor's alone (0600).
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeyValue } from './client.js';

export interface CachedSet {
  readonly revision: bigint;
  readonly savedAt: string;
  readonly kvs: KeyValue[];
}

interface CacheFile {
  readonly source: string;
  readonly revision: string;
  readonly saved_at: string;
  readonly kvs: { key: string; value: string; mod_revision: string }[];
}

export class StoreCache {
  readonly #path: string;
  readonly #source: string;
  #writing: Promise<void> = Promise.resolve();
  #next: { revision: bigint; kvs: KeyValue[] } | undefined;

  constructor(path: string, source: string) {
    this.#path = path;
    this.#source = source;
  }

  get path(): string {
    return this.#path;
  }

  /** The cached set, or undefined when there is none (or it cannot be read: said by `onError`). */
  async read(onError: (err: Error) => void): Promise<CachedSet | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err as Error);
      return undefined;
    }
    try {
      const file = JSON.parse(text) as CacheFile;
      return {
        revision: BigInt(file.revision),
        savedAt: file.saved_at,
        kvs: file.kvs.map((kv) => ({
          key: kv.key,
          value: Buffer.from(kv.value, 'base64'),
          modRevision: BigInt(kv.mod_revision),
        })),
      };
    } catch (err) {
      onError(new Error(`${this.#path}: not a cache this emperor wrote: ${(err as Error).message}`));
      return undefined;
    }
  }

  /** Saves the set; writes coalesce, the last one always lands. */
  save(revision: bigint, kvs: Iterable<KeyValue>, onError: (err: Error) => void): Promise<void> {
    const pending = this.#next === undefined;
    this.#next = { revision, kvs: [...kvs] };
    if (pending)
      this.#writing = this.#writing.then(async () => {
        const next = this.#next;
        this.#next = undefined;
        if (next) await this.#write(next.revision, next.kvs).catch(onError);
      });
    return this.#writing;
  }

  async #write(revision: bigint, kvs: readonly KeyValue[]): Promise<void> {
    const file: CacheFile = {
      source: this.#source,
      revision: revision.toString(),
      saved_at: new Date().toISOString(),
      kvs: kvs.map((kv) => ({
        key: kv.key,
        value: kv.value.toString('base64'),
        mod_revision: kv.modRevision.toString(),
      })),
    };
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
    const tmp = `${this.#path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(file));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.#path);
  }

  /** Waits for the writes under way. */
  flush(): Promise<void> {
    return this.#writing;
  }
}
