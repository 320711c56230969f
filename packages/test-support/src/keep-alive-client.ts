// One HTTP/1.1 keep-alive client for the tests and the benchmarks (test/uwsgi.test.ts,
// bench/uwsgi-emperor.mjs): both measure what a rolling reload does to kept-alive connections,
// and must count the same things the same way.
import { connect, type Socket } from 'node:net';

export interface KeepAliveClient {
  /** One GET / on the kept connection; resolves with the JSON body of a 200 answer. */
  readonly get: () => Promise<Record<string, unknown>>;
  /** Requests sent again on a new connection (see keepAliveClient). */
  readonly retried: () => number;
  /** Connections opened so far. */
  readonly connections: () => number;
  readonly close: () => void;
}

/**
 * A keep-alive HTTP/1.1 client: one connection, reused request after request. A request on a
 * reused connection that the server closed before answering any byte is sent again once on a new
 * connection, as HTTP clients do for idempotent requests (RFC 9112 §9.3.1; browsers, curl, nginx);
 * `retried` counts them. Anything else (refused, reset on a fresh connection, a bad or partial
 * answer, none within `timeoutMs`) rejects.
 */
export function keepAliveClient(port: number, host = '127.0.0.1', timeoutMs = 20_000): KeepAliveClient {
  let socket: Socket | undefined;
  let retried = 0;
  let connections = 0;
  const open = (): Promise<Socket> =>
    new Promise((done, fail) => {
      const s = connect(port, host);
      connections += 1;
      s.once('connect', () => {
        s.off('error', fail);
        done(s);
      });
      s.once('error', fail);
    });
  const once = (s: Socket): Promise<Record<string, unknown>> =>
    new Promise((done, fail) => {
      let buf = Buffer.alloc(0);
      const finish = (err: Error | undefined, value?: Record<string, unknown>): void => {
        s.off('data', onData);
        s.off('close', onClose);
        s.off('error', onError);
        clearTimeout(timer);
        if (err) fail(Object.assign(err, { answered: buf.length > 0 }));
        else done(value ?? {});
      };
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
        if (!head.startsWith('HTTP/1.1 200') || Number.isNaN(length)) {
          finish(new Error(`bad answer: ${JSON.stringify(head.slice(0, 100))}`));
          return;
        }
        if (buf.length < end + 4 + length) return;
        const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
        if (/\r\nconnection: *close/i.test(head)) socket = undefined;
        finish(undefined, JSON.parse(body) as Record<string, unknown>);
      };
      const onClose = (): void => {
        finish(Object.assign(new Error('connection closed before the answer'), { code: 'ECONNRESET' }));
      };
      const onError = (err: Error): void => {
        finish(err);
      };
      const timer = setTimeout(() => {
        finish(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.on('data', onData);
      s.once('close', onClose);
      s.once('error', onError);
      s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    });
  const get = async (): Promise<Record<string, unknown>> => {
    const reused = socket !== undefined && !socket.destroyed;
    const s = reused && socket ? socket : await open();
    socket = s;
    try {
      return await once(s);
    } catch (err) {
      s.destroy();
      socket = undefined;
      if (!reused || (err as { answered?: boolean }).answered) throw err;
      retried += 1;
      const fresh = await open();
      socket = fresh;
      return once(fresh);
    }
  };
  return {
    get,
    retried: () => retried,
    connections: () => connections,
    close: () => socket?.destroy(),
  };
}
