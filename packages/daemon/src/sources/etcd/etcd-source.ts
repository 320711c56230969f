// Vassals defined in etcd: each key PREFIX/vassals/NAME holds the text of a vassal file. One range
// read gives the set and its revision; a v3 watch from the next revision gives every change after
// it, so nothing is lost between the two. A broken stream resumes from the last revision seen; a
// revision compacted away forces a new full read. While etcd is unreachable nothing is handed on,
// so every vassal keeps running; at start, the last set read (StoreCache) stands in for it.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { vassalNameOf } from '@emperor/config';
import type { SourceUpdate, VassalDefinition, VassalSource } from '../source.js';
import { EtcdClient, type EtcdClientOptions, type KeyValue, type WatchEvent } from './client.js';
import type { StoreCache } from './cache.js';
import type { EtcdUrl } from './url.js';

/** `--vassals etcd://HOST:PORT[,HOST:PORT...]/PREFIX`. */
export type EtcdTarget = EtcdUrl;

/** What `emperor status` says of a store (`emperor.stores`). */
export interface StoreStatus {
  readonly source: string;
  readonly connected: boolean;
  /** The last revision read: every change up to it is applied. */
  readonly revision: string | null;
  /** The set running came from the local cache: etcd has not been read since this emperor started. */
  readonly from_cache: boolean;
  /** Since when etcd has been unreachable (ISO 8601), or null. */
  readonly unreachable_since: string | null;
  readonly error: string | null;
}

export interface EtcdSourceOptions {
  readonly target: EtcdTarget;
  readonly client: Omit<EtcdClientOptions, 'endpoints'>;
  readonly cache: StoreCache;
  readonly logger: Logger;
  readonly onUpdate: (update: SourceUpdate) => void;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;
/** A watch stream that breaks is resumed at once, but not twice within this: then it waits its backoff. */
const STREAM_STEADY_MS = 1000;
/** What `%d`, the default `chdir` and relative paths mean for a vassal from etcd (docs/fleet.md). */
const DEFINITION_DIR = '/';

interface Held {
  readonly kv: KeyValue;
  readonly hash: string;
  /** When this version was first seen here (ns): orders claims of one address. */
  readonly seenNs: bigint;
}

export class EtcdSource implements VassalSource {
  readonly label: string;
  readonly #o: EtcdSourceOptions;
  readonly #client: EtcdClient;
  /** `PREFIX/vassals/`. */
  readonly #base: string;
  readonly #held = new Map<string, Held>();
  /** Keys under #base that name no valid vassal, reported once each. */
  readonly #ignored = new Set<string>();
  #revision: bigint | undefined;
  #connected = false;
  #fromCache = false;
  #unreachableSince: number | undefined;
  #error: string | undefined;
  /** A full read is needed before watching again (never read, or compacted). */
  #needsRead = true;
  #backoffMs = BACKOFF_MIN_MS;
  /** When a broken watch stream was last resumed at once (the guard against a spin). */
  #resumedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopWatch: (() => void) | undefined;
  #closed = false;

  constructor(options: EtcdSourceOptions) {
    this.#o = options;
    this.label = options.target.spec;
    this.#client = new EtcdClient({ ...options.client, endpoints: options.target.endpoints });
    this.#base = `${options.target.prefix}/vassals/`;
  }

  /** Reads etcd once, or the cache when it cannot; resolves either way (the emperor starts). */
  async start(): Promise<void> {
    try {
      await this.#read();
      this.#watch();
      return;
    } catch (err) {
      this.#lost(err as Error);
    }
    const cached = await this.#o.cache.read((err) => {
      this.#o.logger.error(
        { event: 'etcd-cache-error', code: 'EMP_ETCD_CACHE', source: this.label, err },
        err.message,
      );
    });
    if (cached) {
      this.#fromCache = true;
      for (const kv of cached.kvs) if (kv.key.startsWith(this.#base)) this.#hold(kv);
      this.#revision = cached.revision;
      this.#o.logger.warn(
        {
          event: 'etcd-cache-used',
          source: this.label,
          vassals: cached.kvs.length,
          revision: cached.revision.toString(),
          saved_at: cached.savedAt,
          cache: this.#o.cache.path,
        },
        `etcd ${this.label} is unreachable: running the ${cached.kvs.length} vassals cached at revision ${cached.revision} (${cached.savedAt}) until it answers`,
      );
    } else
      this.#o.logger.warn(
        { event: 'etcd-cache-missing', source: this.label, cache: this.#o.cache.path },
        `etcd ${this.label} is unreachable and no set was cached (${this.#o.cache.path}): its vassals start when it answers`,
      );
    this.#emit(new Map());
    this.#retryLater();
  }

  async rescan(): Promise<void> {
    if (!this.#connected) return;
    this.#needsRead = true;
    this.#stopWatch?.();
    this.#stopWatch = undefined;
    try {
      await this.#read();
      this.#watch();
    } catch (err) {
      this.#lost(err as Error);
      this.#retryLater();
    }
  }

  status(): StoreStatus {
    return {
      source: this.label,
      connected: this.#connected,
      revision: this.#revision === undefined ? null : this.#revision.toString(),
      from_cache: this.#fromCache,
      unreachable_since:
        this.#unreachableSince === undefined ? null : new Date(this.#unreachableSince).toISOString(),
      error: this.#error ?? null,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#stopWatch?.();
    await this.#o.cache.flush();
  }

  /** Everything under the prefix: replaces what is held, then hands the whole set on. */
  async #read(): Promise<void> {
    const { revision, kvs } = await this.#client.range(this.#base);
    if (this.#closed) return;
    const changed = new Map<string, number>();
    const fresh = new Set(kvs.map((kv) => kv.key));
    for (const key of this.#held.keys()) if (!fresh.has(key)) this.#held.delete(key);
    for (const kv of kvs) {
      const before = this.#held.get(kv.key);
      if (before?.kv.modRevision !== kv.modRevision) {
        this.#hold(kv);
        changed.set(this.#origin(kv.key), Date.now());
      }
    }
    this.#revision = revision;
    this.#needsRead = false;
    this.#connectedNow();
    this.#emit(changed);
    this.#save();
  }

  #watch(): void {
    if (this.#closed || this.#revision === undefined) return;
    let createdAt: number | undefined;
    this.#stopWatch = this.#client.watch(this.#base, this.#revision + 1n, {
      onCreated: () => {
        createdAt = Date.now();
        this.#backoffMs = BACKOFF_MIN_MS;
        this.#connectedNow();
      },
      onEvents: (events, revision) => {
        this.#apply(events, revision);
      },
      onCompacted: (compactRevision) => {
        this.#needsRead = true;
        this.#o.logger.warn(
          {
            event: 'etcd-compacted',
            source: this.label,
            revision: String(this.#revision),
            compact_revision: compactRevision.toString(),
          },
          `etcd ${this.label} compacted past revision ${String(this.#revision)}: reading every key again`,
        );
      },
      onClosed: (err) => {
        this.#stopWatch = undefined;
        if (this.#closed) return;
        if (this.#needsRead && err.message === 'compacted') {
          void this.#reconnect();
          return;
        }
        // A stream that was up and broke (its member died, a proxy restarted): watched again at
        // once, through whichever endpoint answers; etcd is unreachable only if none does. How
        // long it was up says nothing (a member may die a moment after the watch began), but two
        // such breaks within STREAM_STEADY_MS are a spin, and wait their backoff.
        const now = Date.now();
        if (createdAt !== undefined && now - this.#resumedAt >= STREAM_STEADY_MS) {
          this.#resumedAt = now;
          void this.#reconnect();
          return;
        }
        this.#lost(err);
        this.#retryLater();
      },
    });
  }

  #apply(events: readonly WatchEvent[], headerRevision: bigint): void {
    if (events.length === 0) {
      // A progress notification: every change up to the header's revision has been sent.
      if (this.#revision !== undefined && headerRevision > this.#revision) this.#revision = headerRevision;
      return;
    }
    const changed = new Map<string, number>();
    for (const e of events) {
      const key = e.type === 'put' ? e.kv.key : e.key;
      if (e.type === 'put') this.#hold(e.kv);
      else this.#held.delete(key);
      changed.set(this.#origin(key), Date.now());
      const rev = e.type === 'put' ? e.kv.modRevision : e.modRevision;
      if (this.#revision === undefined || rev > this.#revision) this.#revision = rev;
    }
    this.#emit(changed);
    this.#save();
  }

  #hold(kv: KeyValue): void {
    this.#held.set(kv.key, {
      kv,
      hash: createHash('sha256').update(kv.value).digest('hex'),
      seenNs: BigInt(Date.now()) * 1_000_000n,
    });
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#needsRead) await this.#read();
      this.#watch();
    } catch (err) {
      this.#lost(err as Error);
      this.#retryLater();
    }
  }

  #retryLater(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    // Full jitter below the doubling bound: emperors of a fleet do not all come back at once.
    const ms = Math.round(this.#backoffMs / 2 + (Math.random() * this.#backoffMs) / 2);
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.#timer = setTimeout(() => {
      void this.#reconnect();
    }, ms);
  }

  #lost(err: Error): void {
    const first = this.#unreachableSince === undefined;
    this.#connected = false;
    this.#unreachableSince ??= Date.now();
    this.#error = err.message;
    if (first)
      this.#o.logger.warn(
        { event: 'etcd-unreachable', code: 'EMP_ETCD_UNREACHABLE', source: this.label, err: err.message },
        `etcd ${this.label} is unreachable (${err.message}): every vassal keeps running; reconnecting [EMP_ETCD_UNREACHABLE]`,
      );
  }

  #connectedNow(): void {
    if (this.#connected) return;
    const since = this.#unreachableSince;
    this.#connected = true;
    this.#unreachableSince = undefined;
    this.#error = undefined;
    if (this.#fromCache && !this.#needsRead) this.#fromCache = false;
    if (since !== undefined)
      this.#o.logger.info(
        {
          event: 'etcd-reconnected',
          source: this.label,
          revision: String(this.#revision),
          down_ms: Date.now() - since,
        },
        `etcd ${this.label} answers again at revision ${String(this.#revision)}`,
      );
    else
      this.#o.logger.info(
        {
          event: 'etcd-synced',
          source: this.label,
          revision: String(this.#revision),
          vassals: this.#held.size,
        },
        `etcd ${this.label}: ${this.#held.size} keys at revision ${String(this.#revision)}`,
      );
  }

  #origin(key: string): string {
    const hosts = this.#o.target.endpoints.map((e) => `${e.host}:${e.port}`).join(',');
    return `etcd://${hosts}${key.startsWith('/') ? '' : '/'}${key}`;
  }

  #emit(changedAt: ReadonlyMap<string, number>): void {
    const vassals = new Map<string, VassalDefinition>();
    for (const [key, held] of this.#held) {
      const name = key.slice(this.#base.length);
      if (name.includes('/') || vassalNameOf(`${name}.ini`) !== name) {
        if (!this.#ignored.has(key)) {
          this.#ignored.add(key);
          this.#o.logger.warn(
            { event: 'etcd-key-ignored', code: 'EMP_ETCD_KEY_NAME', source: this.label, key },
            `${this.#origin(key)}: ignored: a vassal key is PREFIX/vassals/NAME, NAME made of letters, digits, \`.\`, \`_\` and \`-\`, not starting with \`.\``,
          );
        }
        continue;
      }
      vassals.set(name, {
        name,
        origin: this.#origin(key),
        identity: `mod_revision ${held.kv.modRevision}`,
        contentHash: held.hash,
        bytes: held.kv.value,
        readError: undefined,
        size: held.kv.value.length,
        modifiedNs: held.seenNs,
        dir: DEFINITION_DIR,
      });
    }
    this.#o.onUpdate({ vassals, duplicates: [], changedAt });
  }

  #save(): void {
    if (this.#revision === undefined) return;
    void this.#o.cache.save(
      this.#revision,
      [...this.#held.values()].map((h) => h.kv),
      (err) => {
        this.#o.logger.error(
          { event: 'etcd-cache-error', code: 'EMP_ETCD_CACHE', source: this.label, err },
          err.message,
        );
      },
    );
  }
}
