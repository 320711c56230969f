// A small client of etcd's v3 JSON gateway (the grpc-gateway every etcd >= 3.4 serves on its client
// port): a range read and a watch stream over plain HTTP(S) with node:http. Chosen over the `etcd3`
// package (gRPC) for start-up time and memory: docs/architecture.md, "Vassals from etcd".
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface EtcdTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface EtcdClientOptions {
  readonly endpoints: readonly Endpoint[];
  /** Set: HTTPS, verifying the server against `ca` (else the system's CAs). */
  readonly tls?: EtcdTls;
  readonly auth?: { readonly user: string; readonly password: string };
  /** Per request (not for the watch stream once it answered). */
  readonly timeoutMs?: number;
}

export interface KeyValue {
  readonly key: string;
  readonly value: Buffer;
  readonly modRevision: bigint;
}

export interface RangeResult {
  readonly revision: bigint;
  readonly kvs: KeyValue[];
}

export type WatchEvent =
  | { readonly type: 'put'; readonly kv: KeyValue }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: bigint };

export interface WatchHandlers {
  /** The watch is in place: events from `startRevision` on follow. */
  readonly onCreated: () => void;
  /** Events of one revision or more, with the header's revision (the store's, not the events'). */
  readonly onEvents: (events: WatchEvent[], revision: bigint) => void;
  /** The revision asked for is compacted away: only a full read can catch up. */
  readonly onCompacted: (compactRevision: bigint) => void;
  /** The stream ended or failed: watch again from the last revision seen. */
  readonly onClosed: (err: Error) => void;
}

export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64');

/** The key just after every key that starts with `prefix`: etcd's range_end for a prefix. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end.readUInt8(i);
    if (byte < 0xff) {
      end.writeUInt8(byte + 1, i);
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
}

function kvOf(raw: RawKv): KeyValue {
  return {
    key: unb64(raw.key).toString('utf8'),
    value: unb64(raw.value),
    modRevision: BigInt(raw.mod_revision ?? '0'),
  };
}

export class EtcdClient {
  readonly #options: EtcdClientOptions;
  /** The endpoint last answered from: tried first next time. */
  #current = 0;
  #token: string | undefined;

  constructor(options: EtcdClientOptions) {
    this.#options = options;
  }

  /** Every key under `prefix`, with the store's revision at the time of the read. */
  async range(prefix: string): Promise<RangeResult> {
    const body = await this.#call('/v3/kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    const header = body.header as { revision?: string } | undefined;
    const kvs = ((body.kvs as RawKv[] | undefined) ?? []).map(kvOf);
    return { revision: BigInt(header?.revision ?? '0'), kvs };
  }

  async put(key: string, value: string | Buffer, lease?: string): Promise<void> {
    await this.#call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  }

  /** A lease of `ttl` seconds; its ID as etcd writes it (a decimal string). */
  async grantLease(ttl: number): Promise<string> {
    const body = await this.#call('/v3/lease/grant', { TTL: String(ttl) });
    return String(body.ID);
  }

  /** False when the lease is gone (expired): a TTL of 0 comes back. */
  async keepAlive(lease: string): Promise<boolean> {
    const body = await this.#call('/v3/lease/keepalive', { ID: lease });
    const result = body.result as { TTL?: string } | undefined;
    return Number(result?.TTL ?? '0') > 0;
  }

  async revokeLease(lease: string): Promise<void> {
    await this.#call('/v3/lease/revoke', { ID: lease });
  }

  /** True when the key existed. */
  async delete(key: string): Promise<boolean> {
    const body = await this.#call('/v3/kv/deleterange', { key: b64(key) });
    return Number(body.deleted ?? '0') > 0;
  }

  /**
   * Watches every key under `prefix` from `startRevision` on; returns a function that ends the
   * watch (onClosed is then not called). An endpoint that cannot be reached is passed over for the
   * next one, as by every other call: a member gone is no outage while another one answers.
   */
  watch(prefix: string, startRevision: bigint, handlers: WatchHandlers): () => void {
    let ended = false;
    let req: ReturnType<typeof httpRequest> | undefined;
    const close = (err: Error): void => {
      if (ended) return;
      ended = true;
      req?.destroy();
      handlers.onClosed(err);
    };
    const payload = {
      create_request: {
        key: b64(prefix),
        range_end: b64(prefixEnd(prefix)),
        start_revision: startRevision.toString(),
        progress_notify: true,
      },
    };
    const attempt = (left: number): void => {
      let answered = false;
      void this.#open('/v3/watch').then(
        ({ send }) => {
          if (ended) return;
          req = send(
            payload,
            (res) => {
              answered = true;
              if (res.statusCode !== 200) {
                res.resume();
                this.#token = undefined; // an expired token is the likeliest refusal: log in again
                close(new EtcdError(`watch answered HTTP ${String(res.statusCode)}`, res.statusCode));
                return;
              }
              res.setEncoding('utf8');
              let buf = '';
              res.on('data', (chunk: string) => {
                buf += chunk;
                // The gateway writes one JSON object per message, each ending in a newline.
                let nl: number;
                while (!ended && (nl = buf.indexOf('\n')) >= 0) {
                  const line = buf.slice(0, nl).trim();
                  buf = buf.slice(nl + 1);
                  if (line) this.#watchMessage(line, handlers, close);
                }
              });
              res.on('end', () => {
                close(new EtcdError('the watch stream ended'));
              });
              res.on('error', close);
            },
            (err) => {
              if (answered || ended || left <= 1) close(err);
              else {
                // Not reached at all (refused, reset before an answer): the next endpoint.
                this.#next();
                attempt(left - 1);
              }
            },
          );
          // A peer that vanishes without a reset (a cable, a frozen host) is noticed by TCP itself.
          req.on('socket', (socket) => socket.setKeepAlive(true, 10_000));
        },
        (err: unknown) => {
          close(err as Error);
        },
      );
    };
    attempt(this.#options.endpoints.length);
    return () => {
      ended = true;
      req?.destroy();
    };
  }

  #next(): void {
    this.#current = (this.#current + 1) % this.#options.endpoints.length;
  }

  #watchMessage(line: string, handlers: WatchHandlers, close: (err: Error) => void): void {
    let msg: { result?: Record<string, unknown>; error?: { message?: string } };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      close(new EtcdError(`the watch stream sent something that is not JSON: ${line.slice(0, 80)}`));
      return;
    }
    if (msg.error) {
      close(new EtcdError(`watch: ${msg.error.message ?? 'error'}`));
      return;
    }
    const r = msg.result ?? {};
    const revision = BigInt((r.header as { revision?: string } | undefined)?.revision ?? '0');
    if (r.compact_revision !== undefined && r.compact_revision !== '0') {
      handlers.onCompacted(BigInt(r.compact_revision as string));
      close(new EtcdError('compacted'));
      return;
    }
    if (r.canceled === true) {
      const reason = typeof r.cancel_reason === 'string' ? r.cancel_reason : 'no reason given';
      close(new EtcdError(`watch canceled: ${reason}`));
      return;
    }
    if (r.created === true) handlers.onCreated();
    const raw = (r.events as { type?: string; kv?: RawKv }[] | undefined) ?? [];
    const events = raw.map((e): WatchEvent => {
      const kv = kvOf(e.kv ?? {});
      return e.type === 'DELETE'
        ? { type: 'delete', key: kv.key, modRevision: kv.modRevision }
        : { type: 'put', kv };
    });
    handlers.onEvents(events, revision);
  }

  /** POSTs JSON to each endpoint in turn until one answers. */
  async #call(path: string, payload: unknown): Promise<Record<string, unknown>> {
    let last: Error | undefined;
    for (let i = 0; i < this.#options.endpoints.length; i++) {
      try {
        const { send } = await this.#open(path);
        return await new Promise((done, fail) => {
          const req = send(
            payload,
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () => {
                let body: Record<string, unknown>;
                try {
                  body = JSON.parse(text || '{}') as Record<string, unknown>;
                } catch {
                  fail(
                    new EtcdError(`${path} answered HTTP ${String(res.statusCode)}: ${text.slice(0, 120)}`),
                  );
                  return;
                }
                if (res.statusCode === 200) done(body);
                else {
                  const msg = (body.message ?? body.error ?? text) as string;
                  if (/auth token|token/i.test(msg)) this.#token = undefined; // expired: log in again next time
                  fail(new EtcdError(`${path}: ${msg}`, res.statusCode));
                }
              });
              res.on('error', fail);
            },
            fail,
          );
          req.setTimeout(this.#options.timeoutMs ?? 5000, () => {
            req.destroy(new EtcdError(`${path}: no answer within ${this.#options.timeoutMs ?? 5000} ms`));
          });
        });
      } catch (err) {
        last = err as Error;
        // An answer from etcd itself (a refusal, a bad request) is not the endpoint's fault.
        if (err instanceof EtcdError && err.status !== undefined) throw err;
        this.#next();
      }
    }
    throw last ?? new EtcdError('no endpoint');
  }

  /** A connection dropped at once, or OpenSSL's words: what the user should check, said plainly. */
  #explain(err: Error): Error {
    const tls = this.#options.tls;
    const hungUp = (err as NodeJS.ErrnoException).code === 'ECONNRESET' || err.message === 'socket hang up';
    const alert = /alert ([a-z ]+?)(?::|$)/i.exec(err.message)?.[1];
    const message = alert === undefined ? err.message : `etcd refused the TLS handshake (alert: ${alert})`;
    if (hungUp && !tls) return new EtcdError(`${message} (if etcd serves HTTPS, give --etcd-cacert)`);
    if (tls && !tls.cert && (hungUp || alert !== undefined))
      return new EtcdError(
        `${message} (if etcd runs with --client-cert-auth, give --etcd-cert and --etcd-key)`,
      );
    if (tls && /verify|self.signed|certificate/i.test(err.message) && alert === undefined)
      return new EtcdError(`${message} (is --etcd-cacert the CA that signed etcd's certificate?)`);
    return alert === undefined ? err : new EtcdError(message);
  }

  /** A request to the current endpoint, logged in first when a user is given. */
  async #open(path: string): Promise<{
    send: (
      payload: unknown,
      onResponse: (res: IncomingMessage) => void,
      onError: (err: Error) => void,
    ) => ReturnType<typeof httpRequest>;
  }> {
    const { auth } = this.#options;
    if (auth && this.#token === undefined && path !== '/v3/auth/authenticate') {
      const body = await this.#call('/v3/auth/authenticate', { name: auth.user, password: auth.password });
      this.#token = body.token as string | undefined;
    }
    const endpoints = this.#options.endpoints;
    const endpoint = endpoints[this.#current % endpoints.length] ?? endpoints[0];
    if (!endpoint) throw new EtcdError('no etcd endpoint given');
    const tls = this.#options.tls;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#token !== undefined && path !== '/v3/auth/authenticate') headers.authorization = this.#token;
    const base: RequestOptions = { host: endpoint.host, port: endpoint.port, path, method: 'POST', headers };
    return {
      send: (payload, onResponse, onError) => {
        const req = tls
          ? httpsRequest({ ...base, ...tls, agent: false }, onResponse)
          : httpRequest({ ...base, agent: false }, onResponse);
        req.on('error', (err) => {
          onError(this.#explain(err));
        });
        req.end(JSON.stringify(payload));
        return req;
      },
    };
  }
}
