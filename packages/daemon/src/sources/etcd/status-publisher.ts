// Publishes this emperor's vassals under PREFIX/status/NODE/NAME on a lease (docs/fleet.md,
// "Status of the fleet"): kept alive while the emperor lives, so a dead host's entries vanish
// with the lease (STATUS_TTL_S) and `emperor status --cluster` shows only live emperors.
import type { Logger } from 'pino';
import { formatIssue } from '@emperor/config';
import type { Reconciler } from '../../reconciler.js';
import type { EtcdClient } from './client.js';

export const STATUS_TTL_S = 10;
/** Keep-alive period: a third of the TTL, so one lost round trip does not let the lease expire. */
const KEEPALIVE_MS = (STATUS_TTL_S * 1000) / 3;
/** Changes of state are published in batches at most this often (a mass deploy is one batch). */
const PUBLISH_DELAY_MS = 200;

/** The value of PREFIX/status/NODE/NAME. */
export interface PublishedStatus {
  readonly node: string;
  readonly name: string;
  readonly state: string;
  readonly generation: number | null;
  readonly pids: number[];
  readonly restarts: number;
  readonly error: string | null;
}

export class StatusPublisher {
  readonly #client: EtcdClient;
  readonly #base: string;
  readonly #node: string;
  readonly #reconciler: Reconciler;
  readonly #logger: Logger;
  #lease: string | undefined;
  /** What is published now, by name (JSON text): only changes are written. */
  readonly #published = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #closed = false;
  #failing = false;

  constructor(options: {
    client: EtcdClient;
    prefix: string;
    node: string;
    reconciler: Reconciler;
    logger: Logger;
  }) {
    this.#client = options.client;
    this.#base = `${options.prefix}/status/${options.node}/`;
    this.#node = options.node;
    this.#reconciler = options.reconciler;
    this.#logger = options.logger;
    this.#keepalive = setInterval(() => {
      void this.#keepAlive();
    }, KEEPALIVE_MS);
    this.#keepalive.unref();
  }

  /** Something changed: publish soon. */
  schedule(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, PUBLISH_DELAY_MS);
  }

  #run(): void {
    this.#running = this.#running.then(async () => {
      try {
        await this.#publish();
        this.#failing = false;
      } catch (err) {
        // etcd unreachable: the next change or keep-alive tick tries again; vassals are not affected.
        if (!this.#failing)
          this.#logger.warn(
            { event: 'status-publish-failed', err: (err as Error).message },
            `cannot publish status to etcd: ${(err as Error).message}`,
          );
        this.#failing = true;
        this.#lease = undefined;
        this.#published.clear();
      }
    });
  }

  async #publish(): Promise<void> {
    if (this.#closed) return;
    this.#lease ??= await this.#grant();
    const now = this.#entries();
    for (const [name, text] of now) {
      if (this.#published.get(name) === text) continue;
      await this.#client.put(this.#base + name, text, this.#lease);
      this.#published.set(name, text);
    }
    for (const name of [...this.#published.keys()]) {
      if (now.has(name)) continue;
      await this.#client.delete(this.#base + name);
      this.#published.delete(name);
    }
  }

  async #grant(): Promise<string> {
    const lease = await this.#client.grantLease(STATUS_TTL_S);
    this.#published.clear(); // entries on an older lease are gone or going
    return lease;
  }

  async #keepAlive(): Promise<void> {
    if (this.#closed) return;
    const lease = this.#lease;
    if (lease === undefined) {
      this.#run(); // publish failed earlier: try again now
      return;
    }
    try {
      if (!(await this.#client.keepAlive(lease))) {
        this.#lease = undefined; // expired (etcd was away longer than the TTL): publish anew
        this.#run();
      }
    } catch {
      // unreachable: the next tick tries again
    }
  }

  #entries(): Map<string, string> {
    const out = new Map<string, string>();
    const r = this.#reconciler;
    const names = new Set([...r.runners.keys(), ...r.errors.keys()]);
    for (const name of [...names].sort()) {
      const runner = r.runners.get(name);
      const pending = r.errors.get(name) ?? r.duplicates.get(name);
      const issue = pending?.issues[0];
      const v = runner?.vassal;
      const entry: PublishedStatus = {
        node: this.#node,
        name,
        state: v?.state ?? 'failed',
        generation: v?.generation ?? null,
        pids: v ? v.instances.flatMap((i) => (i.pid === undefined ? [] : [i.pid])) : [],
        restarts: v?.restarts ?? 0,
        error: issue ? formatIssue(issue) : null,
      };
      out.set(name, JSON.stringify(entry));
    }
    return out;
  }

  /** Deletes what this emperor published and lets the lease go: a stopped emperor leaves nothing. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#keepalive);
    await this.#running;
    const lease = this.#lease;
    if (lease !== undefined) await this.#client.revokeLease(lease).catch(() => undefined);
  }
}
