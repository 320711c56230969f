// Stop without losing a request: on the stop signal, stop accepting (the kernel keeps queueing
// new clients on the shared socket, for the other instances and the next generation), finish the
// requests in flight, and move keep-alive clients off this process: each gets its next response
// with `Connection: close`, and a connection that stays idle is closed when the server would have
// closed it anyway (its keep-alive timeout). Then exit.
// Closing an idle connection any earlier races with a client that is reusing it at that moment:
// its request fails, and Node's http.Agent does not retry. At the keep-alive timeout the server
// would close it anyway, so the drain adds no failure that steady state does not already have;
// the price is an old generation lingering up to that timeout while idle clients hold
// connections to it. A long keepAliveTimeout (65 s behind some load balancers) is cut to half the
// deadline, so that the drain still ends by itself and exits 0.
// Keep-alive clients are sent away at random moments over `spreadMs` rather than all at once: a
// burst of reconnections onto a new generation that has not warmed up yet is what costs a rolling
// reload its tail latency (Envoy's gradual drain does the same).
import { Server as NetServer, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { status } from './notify.js';

export type ShutdownOutcome = 'drained' | 'timeout';

export interface GracefulShutdownOptions {
  /** The signal(s) that start the shutdown; `[]` for none (call `shutdown()`). Default SIGTERM. */
  readonly signal?: NodeJS.Signals | readonly NodeJS.Signals[];
  /** Hard deadline from the signal: remaining connections are destroyed. Default 25 s (the
   * emperor's `stop-timeout` defaults to 30 s, after which it sends SIGKILL). */
  readonly timeoutMs?: number;
  /** An HTTP connection idle this long is closed; one idle for less may be carrying the client's
   * next request, which then gets `Connection: close`. Default: the server's `keepAliveTimeout`
   * (Node's default 5000 ms; 5000 ms when it is 0, no timeout), at most half of `timeoutMs`. */
  readonly idleGraceMs?: number;
  /** Keep-alive clients are asked to leave at random moments within this window from the signal,
   * so that they move to the next generation gradually. 0 sends them all away at once. At most
   * half of `timeoutMs`. Default 1000 ms. */
  readonly spreadMs?: number;
  /** Runs once connections are drained (close database pools...), within the same deadline. */
  readonly onShutdown?: () => unknown;
  /** Exit when done: 0 once drained, 1 at the deadline or if onShutdown throws. Default true. */
  readonly exit?: boolean;
}

export interface GracefulShutdown {
  readonly draining: boolean;
  /** Starts the shutdown now, as the signal does; resolves when done (the same promise each call). */
  shutdown(): Promise<ShutdownOutcome>;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;
export const DEFAULT_IDLE_GRACE_MS = 5000;
export const DEFAULT_SPREAD_MS = 1000;

interface Connection {
  /** Requests received and not yet answered (more than one when the client pipelines). */
  active: number;
  idleSince: number;
  /** While draining: from this time on, its next response says `Connection: close`. */
  leaveAt: number;
}

/** http.Server and https.Server: they emit `request` and know keep-alive. */
function isHttp(server: NetServer): boolean {
  return typeof (server as { closeIdleConnections?: unknown }).closeIdleConnections === 'function';
}

/**
 * Makes `server` shut down gracefully on `signal`. Call it before the server accepts its first
 * connection (right after creating it): connections accepted earlier are not tracked and are
 * only closed by the deadline. A second signal exits at once.
 */
export function gracefulShutdown(server: NetServer, options: GracefulShutdownOptions = {}): GracefulShutdown {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  // Read at drain time: the app may set keepAliveTimeout after calling this.
  const idleGrace = (): number =>
    options.idleGraceMs ??
    Math.min(
      (server as { keepAliveTimeout?: number }).keepAliveTimeout || DEFAULT_IDLE_GRACE_MS,
      timeoutMs / 2,
    );
  const spreadMs = Math.min(options.spreadMs ?? DEFAULT_SPREAD_MS, timeoutMs / 2);
  // Past the deadline a busy client would be cut off mid-request instead of sent away.
  if (!(spreadMs >= 0))
    throw new TypeError(`spreadMs must be a number >= 0, not ${String(options.spreadMs)}`);
  const exit = options.exit ?? true;
  const http = isHttp(server);
  const connections = new Map<Socket, Connection>();
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  let finished: Promise<ShutdownOutcome> | undefined;

  // tls servers announce the decrypted socket (the one requests carry) as secureConnection.
  const connectionEvent = server instanceof TlsServer ? 'secureConnection' : 'connection';
  server.on(connectionEvent, (socket: Socket) => {
    // One accepted while draining (a TLS handshake finishing, say) leaves at once.
    connections.set(socket, { active: 0, idleSince: Date.now(), leaveAt: 0 });
    socket.once('close', () => connections.delete(socket));
  });
  if (http) {
    // Prepended: the app's handler may answer synchronously, before a later listener could
    // still set the header.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const conn = connections.get(req.socket);
      if (conn) conn.active += 1;
      if (draining && (!conn || Date.now() >= conn.leaveAt)) res.setHeader('connection', 'close');
      inFlight.add(res);
      let done = false;
      const onDone = (): void => {
        if (done) return;
        done = true;
        inFlight.delete(res);
        if (conn) {
          conn.active -= 1;
          conn.idleSince = Date.now();
        }
      };
      res.once('finish', onDone);
      res.once('close', onDone);
    });
  }

  // A response not started yet when its connection's time to leave comes says so.
  const markLeaving = (now: number): void => {
    for (const res of inFlight)
      if (!res.headersSent && (connections.get(res.req.socket)?.leaveAt ?? 0) <= now)
        res.setHeader('connection', 'close');
  };

  // A connection idle for the grace carries no traffic to spread: it closes whatever its turn.
  const closeIdle = (now: number, idleGraceMs: number): void => {
    for (const [socket, conn] of connections)
      if (conn.active === 0 && now - conn.idleSince >= idleGraceMs) socket.destroy();
  };

  const drain = (): Promise<ShutdownOutcome> =>
    new Promise((resolve) => {
      draining = true;
      status('stopping: draining connections');
      const now = Date.now();
      for (const conn of connections.values()) conn.leaveAt = now + Math.random() * spreadMs;
      markLeaving(now);
      let sweep: NodeJS.Timeout | undefined;
      const deadline = setTimeout(() => {
        clearInterval(sweep);
        for (const socket of connections.keys()) socket.destroy();
        resolve('timeout');
      }, timeoutMs);
      // net's close, not http's: http.Server#close also destroys idle keep-alive connections at
      // once, and one of them may be carrying the client's next request (a failed request).
      NetServer.prototype.close.call(server, () => {
        clearTimeout(deadline);
        clearInterval(sweep);
        resolve('drained');
      });
      if (http) {
        const idleGraceMs = idleGrace();
        const tick = Math.max(10, Math.min(100, idleGraceMs / 4));
        sweep = setInterval(() => {
          markLeaving(Date.now());
          closeIdle(Date.now(), idleGraceMs);
        }, tick);
        closeIdle(Date.now(), idleGraceMs);
      }
    });

  const run = async (): Promise<ShutdownOutcome> => {
    const started = Date.now();
    let outcome = await drain();
    let failed = false;
    if (options.onShutdown) {
      const left = Math.max(0, timeoutMs - (Date.now() - started));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, left, 'timeout')));
      try {
        if ((await Promise.race([Promise.resolve(options.onShutdown()), late])) === 'timeout')
          outcome = 'timeout';
      } catch {
        failed = true;
      } finally {
        clearTimeout(timer);
      }
    }
    if (exit) process.exit(outcome === 'drained' && !failed ? 0 : 1);
    return outcome;
  };

  const shutdown = (): Promise<ShutdownOutcome> => (finished ??= run());

  const signals: readonly NodeJS.Signals[] =
    options.signal === undefined
      ? ['SIGTERM']
      : typeof options.signal === 'string'
        ? [options.signal]
        : options.signal;
  let signalled = false;
  for (const signal of signals) {
    process.on(signal, () => {
      if (signalled && exit) process.exit(1); // a second signal: whoever sent it wants it gone now
      signalled = true;
      void shutdown();
    });
  }

  return {
    get draining() {
      return draining;
    },
    shutdown,
  };
}
