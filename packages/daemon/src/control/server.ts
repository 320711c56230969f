// The control server: HTTP/1.1 with JSON on a unix socket (docs/protocol.md), so the CLI and
// `curl --unix-socket` speak the same protocol. It reads snapshots of the runners and turns
// actions into events of the same runners; it never changes state any other way.
//
// Hostile or broken clients: headers and bodies are size-limited, requests must arrive within
// a deadline, idle connections are closed, the number of connections is capped (at the cap the
// oldest idle connection makes room; only when every one is answering a request is a new one
// refused, with a 503 that says so), a slow log follower has output skipped rather than queued,
// and every handler error becomes a JSON 4xx/5xx.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Emperor } from '../emperor.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import { CpuSampler } from './cpu-sampler.js';
import { History, SAMPLES } from './history.js';
import { ControlError } from './errors.js';
import { buildStatus, knownNames, type EmperorInfo, type StatusSnapshot } from './snapshot.js';
import { performActions, parseAction, parseSignal, signalVassals } from './actions.js';
import { resolveTargets, unknownVassal } from './targets.js';
import { serveLogs, MAX_LINES } from './logs.js';
import { showVassal } from './show.js';
import { Histogram, renderMetrics } from './metrics.js';
import { clearStaleSocket, listenPrivately } from './socket-file.js';
import { fdBudget } from '../os/fd-budget.js';
import { EventHub } from './events.js';
import { serveDashboard } from './dashboard-assets.js';
import {
  checkHost,
  checkSameOrigin,
  fromBrowser,
  loginCookie,
  logoutCookie,
  type TokenFile,
} from './dashboard-auth.js';

export const MAX_BODY_BYTES = 64 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A connection answering no request (before its first, between keep-alive ones) lives this long. */
const IDLE_TIMEOUT_MS = 5_000;
/** A request being answered with no traffic for this long is closed (not log followers or `--wait`). */
const ACTIVE_TIMEOUT_MS = 30_000;
/** After an error answer, how long a client has to read it and close. */
const ERROR_LINGER_MS = 2_000;
/** Refused connections allowed to linger for their 503 at once; beyond, they are closed unanswered. */
const MAX_REFUSING = 16;
const DEFAULT_WAIT_MS = 300_000;
const MAX_WAIT_MS = 24 * 3600_000;
const DEFAULT_LOG_LINES = 20;

export interface ControlServerOptions {
  readonly path: string;
  /** Group id given the socket (`--control-group`); the socket is mode 0660 either way. */
  readonly gid?: number;
  readonly logger: Logger;
  readonly version: string;
  readonly vassalDirs: readonly string[];
  /** The environment instances inherit, for `emperor show`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  /** At most this many connections (default: 256, fewer under a low fd limit; fd-budget.ts). */
  readonly maxConnections?: number;
}

/** How a request arrived, and what it may do (dashboard-auth.ts). */
export type Access =
  | { readonly transport: 'socket' }
  | {
      readonly transport: 'tcp';
      /** The token file, for `POST /v1/login`. */
      readonly tokens: TokenFile;
      /** How the request proved it holds the token, if it did. */
      readonly token: 'bearer' | 'cookie' | undefined;
      /** The host name given to `--dashboard`, allowed in `Host` beside addresses and localhost. */
      readonly hostName: string | undefined;
    };

/** What the dashboard's TCP port serves (read-only ones, and actions for token holders). */
const TCP_GET = new Set(['/', '/v1/version', '/v1/status', '/v1/history', '/v1/events', '/v1/session']);
const TCP_POST = new Set(['/v1/actions', '/v1/login', '/v1/logout']);

export interface ControlServer {
  readonly path: string;
  /** Answers a request that arrived another way than the socket (the dashboard's TCP port). */
  serve(req: IncomingMessage, res: ServerResponse, access: Access): void;
  /** Starts answering for `emperor` (until then requests get 503 EMP_CONTROL_STARTING). */
  attach(emperor: Emperor): void;
  /** The current status of every vassal (for `/metrics`). */
  status(): StatusSnapshot | undefined;
  /** Prometheus text of the current status, or undefined before `attach`. */
  metrics(): string | undefined;
  /** Stops listening, ends every connection and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

/** Opens the socket before the emperor starts, so a second emperor is refused before it acts. */
export async function openControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { logger, path } = options;
  const now = options.now ?? Date.now;
  const env = options.env ?? process.env;
  const info: EmperorInfo = {
    pid: process.pid,
    version: options.version,
    startedAt: now(),
    vassalDirs: options.vassalDirs,
  };
  const sampler = new CpuSampler(now);
  const history = new History(now);
  const ready = new Histogram();
  const reaction = new Histogram();
  let unsubscribeReaction: (() => void) | undefined;
  const retryAt = new WeakMap<VassalRunner, number>();
  const seenReady = new WeakMap<VassalRunner, Set<number>>();
  let emperor: Emperor | undefined;
  let unsubscribe: (() => void) | undefined;
  const inflight = new Set<AbortController>();

  // What the runners do not record but status and metrics show: when a failed vassal retries,
  // and how long each instance took from spawn to ready.
  const observe = (runner: VassalRunner): void => {
    history.observe(runner);
    const v = runner.vassal;
    if (v.state === 'failed') {
      if (!retryAt.has(runner)) retryAt.set(runner, now() + v.config.restartDelayMaxMs);
    } else retryAt.delete(runner);
    let seen = seenReady.get(runner);
    if (!seen) seenReady.set(runner, (seen = new Set()));
    const live = new Set<number>();
    for (const i of v.instances) {
      if (i.pid === undefined) continue;
      live.add(i.pid);
      if (i.state === 'running' && !seen.has(i.pid)) {
        seen.add(i.pid);
        ready.observe(Math.max(0, now() - i.startedAt) / 1000);
      }
    }
    for (const pid of seen) if (!live.has(pid)) seen.delete(pid);
  };

  const status = (names?: readonly string[]): StatusSnapshot | undefined =>
    emperor &&
    buildStatus(emperor, info, sampler, names ?? knownNames(emperor), (r) => retryAt.get(r), now());
  const events = new EventHub({
    status,
    history,
    health: () => ({
      uptime_s: Math.floor((now() - info.startedAt) / 1000),
      rss_bytes: process.memoryUsage.rss(),
    }),
  });

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    socket: Socket,
    access: Access,
  ): Promise<void> => {
    const url = parseUrl(req.url);
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const route = path.replace(/\/+$/, '') || '/';
    const tcp = access.transport === 'tcp' ? access : undefined;
    // A browser page on another name resolving here (DNS rebinding, through a tunnel too). Other
    // clients of the socket may name any host (`curl --unix-socket S http://emperor/...`).
    if (tcp || fromBrowser(req.headers)) checkHost(req.headers, tcp?.hostName);
    const reading = method === 'GET' || method === 'HEAD';
    // Whatever changes state: a browser page may ask only from the dashboard's own origin.
    if (!reading) checkSameOrigin(req.headers, fromBrowser(req.headers) || tcp?.token === 'cookie');
    if (tcp) {
      const logs = /^\/v1\/vassals\/[^/]+\/logs$/.test(route);
      const dashboard = route === '/dashboard' || route.startsWith('/dashboard/');
      if (!(reading ? TCP_GET.has(route) || logs || dashboard : TCP_POST.has(route)))
        throw new ControlError(
          'EMP_CONTROL_NOT_FOUND',
          `no endpoint ${method.slice(0, 20)} ${route.slice(0, 100)} on the dashboard port; the control socket has every endpoint (docs/protocol.md)`,
        );
      if (route === '/') {
        res.writeHead(302, { location: '/dashboard/', 'content-length': 0 }).end();
        return;
      }
    }
    if (route === '/dashboard' && path !== '/dashboard/') {
      // The page's links are relative to `/dashboard/`.
      res.writeHead(301, { location: 'dashboard/', 'content-length': 0 }).end();
      return;
    }
    if (route.startsWith('/dashboard')) {
      if (!reading) expect(method, 'GET');
      serveDashboard(path.slice('/dashboard'.length), res, method === 'HEAD');
      return;
    }
    if (route === '/v1/session') {
      expect(method, 'GET');
      send(res, 200, session(access));
      return;
    }
    if (route === '/v1/login') {
      expect(method, 'POST');
      const body = await readJson(req);
      if (!tcp) {
        send(res, 200, session(access));
        return;
      }
      if (typeof body.token !== 'string' || !tcp.tokens.matches(body.token.trim()))
        throw new ControlError(
          'EMP_CONTROL_UNAUTHORIZED',
          `not the dashboard token; it is in ${tcp.tokens.path} (readable by root and the control group)`,
        );
      logger.info({ event: 'dashboard-login', from: socket.remoteAddress }, 'dashboard-login');
      res.setHeader('set-cookie', loginCookie(body.token.trim()));
      send(res, 200, { ...session(tcp), can_act: true });
      return;
    }
    if (route === '/v1/logout') {
      expect(method, 'POST');
      if (tcp) res.setHeader('set-cookie', logoutCookie());
      send(res, 200, { ...session(access), can_act: !tcp });
      return;
    }
    if (route === '/v1/version' || route === '/') {
      expect(method, 'GET');
      send(res, 200, { version: info.version, pid: info.pid, node: process.version, api: 1 });
      return;
    }
    if (!emperor)
      throw new ControlError('EMP_CONTROL_STARTING', 'the emperor is starting; try again in a moment');
    const emp = emperor;
    if (route === '/v1/status') {
      expect(method, 'GET');
      const name = url.searchParams.get('name');
      const names = name === null ? knownNames(emp) : resolveTargets([name], knownNames(emp));
      send(res, 200, status(names));
      return;
    }
    if (route === '/v1/history') {
      expect(method, 'GET');
      // `name` may repeat (at most 1000): `emperor top` asks only for the rows it shows.
      const wanted = url.searchParams.getAll('name');
      if (wanted.length > 1000)
        throw new ControlError('EMP_CONTROL_BAD_REQUEST', '`name` may be given at most 1000 times');
      const names = wanted.length === 0 ? knownNames(emp) : resolveTargets(wanted, knownNames(emp));
      send(res, 200, history.read(names, intParam(url, 'points', SAMPLES, SAMPLES)));
      return;
    }
    if (route === '/v1/events') {
      expect(method, 'GET');
      events.open(res, { samples: url.searchParams.get('samples') !== '0' });
      return;
    }
    if (route === '/v1/actions') {
      expect(method, 'POST');
      if (tcp && tcp.token === undefined)
        throw new ControlError(
          'EMP_CONTROL_UNAUTHORIZED',
          `the dashboard is read-only without its token: log in with the token in ${tcp.tokens.path}, or send \`Authorization: Bearer TOKEN\``,
        );
      const body = await readJson(req);
      const action = parseAction(body.action);
      const targets = body.targets;
      if (!Array.isArray(targets) || targets.length > 1000 || !targets.every((t) => typeof t === 'string'))
        throw new ControlError(
          'EMP_CONTROL_BAD_REQUEST',
          '`targets` must be a list of vassal names or globs (at most 1000)',
        );
      const wait = body.wait === true;
      const timeoutS = body.timeout_s ?? DEFAULT_WAIT_MS / 1000;
      if (typeof timeoutS !== 'number' || !(timeoutS > 0) || timeoutS * 1000 > MAX_WAIT_MS)
        throw new ControlError(
          'EMP_CONTROL_BAD_REQUEST',
          '`timeout_s` must be a number of seconds above 0, at most one day',
        );
      const names = resolveTargets(targets, knownNames(emp));
      const abort = new AbortController();
      inflight.add(abort);
      res.once('close', () => {
        abort.abort();
      });
      if (wait) socket.setTimeout(0);
      try {
        logger.info(
          { event: 'control-action', action, vassals: names.join(','), wait, via: access.transport },
          'control-action',
        );
        const results = await performActions(
          emp,
          { action, names, wait, timeoutMs: timeoutS * 1000 },
          abort.signal,
        );
        if (!abort.signal.aborted) send(res, 200, { action, results });
      } finally {
        inflight.delete(abort);
      }
      return;
    }
    if (route === '/v1/signal') {
      expect(method, 'POST');
      const body = await readJson(req);
      const signal = parseSignal(body.signal);
      const targets = body.targets;
      if (!Array.isArray(targets) || targets.length > 1000 || !targets.every((t) => typeof t === 'string'))
        throw new ControlError(
          'EMP_CONTROL_BAD_REQUEST',
          '`targets` must be a list of vassal names or globs (at most 1000)',
        );
      const names = resolveTargets(targets, knownNames(emp));
      logger.info({ event: 'control-signal', signal, vassals: names.join(',') }, 'control-signal');
      send(res, 200, { signal, results: signalVassals(emp, names, signal) });
      return;
    }
    if (route === '/v1/rescan') {
      expect(method, 'POST');
      logger.info({ event: 'rescan', via: 'control' }, 'rescan');
      await emp.rescan();
      send(res, 200, { vassal_dirs: info.vassalDirs, vassals: knownNames(emp).length });
      return;
    }
    const m = /^\/v1\/vassals\/([^/]+)(\/logs)?$/.exec(route);
    if (m?.[1] !== undefined) {
      expect(method, 'GET');
      const name = decodeName(m[1]);
      if (m[2] !== undefined) {
        const lines = intParam(url, 'lines', DEFAULT_LOG_LINES, MAX_LINES);
        const following = url.searchParams.get('follow') === '1' || url.searchParams.get('follow') === 'true';
        if (serveLogs(emp, name, { lines, following }, req, res)) return;
      }
      const runner = emp.reconciler.runners.get(name);
      if (!runner || runner.disposed) {
        const pending = emp.reconciler.errors.get(name);
        if (pending)
          throw new ControlError(
            'EMP_VASSAL_NOT_RUNNING',
            `${name} has never started: its file has errors (see \`emperor status ${name}\`)`,
          );
        throw unknownVassal(name, knownNames(emp));
      }
      send(res, 200, showVassal(runner, env, emp.touchReloads(name)));
      return;
    }
    throw new ControlError(
      'EMP_CONTROL_NOT_FOUND',
      `no endpoint ${method} ${route.slice(0, 100)}; see docs/protocol.md`,
    );
  };

  /** Runs `handle`, turning every error into a JSON answer. */
  const respond = (req: IncomingMessage, res: ServerResponse, socket: Socket, access: Access): void => {
    handle(req, res, socket, access).catch((err: unknown) => {
      if (!(err instanceof ControlError))
        logger.error({ event: 'control-error', err, url: req.url?.slice(0, 200) }, 'control-error');
      const e =
        err instanceof ControlError
          ? err
          : new ControlError('EMP_CONTROL_INTERNAL', 'internal error; see the emperor log');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, e.status, { error: { code: e.code, message: e.message, ...e.extra } });
      // An oversized body is not read to its end: close instead of draining it.
      if (e.code === 'EMP_CONTROL_TOO_LARGE') res.once('finish', () => socket.destroy());
    });
  };

  const server: Server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      // A unix socket has no virtual hosts; `curl --unix-socket` and raw clients may omit Host.
      requireHostHeader: false,
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      keepAliveTimeout: IDLE_TIMEOUT_MS,
      // How often headersTimeout and requestTimeout are enforced (Node's default is every 30 s).
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      // req.socket is gone by the time an unread body is destroyed: keep our own reference.
      const socket = req.socket;
      const conn = connections.get(socket);
      if (!conn) return; // a refused connection: its 503 is written, and it closes once sent
      conn.active += 1;
      let done = false;
      const finished = (): void => {
        if (!done) conn.active -= 1;
        done = true;
      };
      res.once('finish', finished).once('close', finished);
      socket.setTimeout(ACTIVE_TIMEOUT_MS);
      respond(req, res, socket, { transport: 'socket' });
    },
  );
  // Open connections, oldest first, with how many requests each is answering. Counted here rather
  // than by server.maxConnections, which drops new connections however idle the old ones are.
  const budget = fdBudget();
  const cap = options.maxConnections ?? budget.controlConnections;
  const connections = new Map<Socket, { active: number }>();
  let refusing = 0;
  const forget = (socket: Socket): void => {
    connections.delete(socket);
    budget.openControl = connections.size;
  };
  server.on('connection', (socket: Socket) => {
    if (connections.size >= cap && !dropOldestIdle()) {
      // A connect loop must not hold an fd per attempt for ERROR_LINGER_MS each.
      if (refusing >= MAX_REFUSING) {
        socket.destroy();
        return;
      }
      refusing += 1;
      socket.once('close', () => {
        refusing -= 1;
      });
      refuseBusy(socket, cap);
      return;
    }
    connections.set(socket, { active: 0 });
    budget.openControl = connections.size;
    socket.setTimeout(IDLE_TIMEOUT_MS); // until its first request: Node sets none
    socket.once('close', () => {
      forget(socket);
    });
  });
  const dropOldestIdle = (): boolean => {
    for (const [socket, c] of connections)
      if (c.active === 0) {
        forget(socket);
        socket.destroy();
        return true;
      }
    return false;
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP, headers too large, or too slow: answer if the socket still takes it.
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, code] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'EMP_CONTROL_TOO_LARGE']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'EMP_CONTROL_TIMEOUT']
          : [400, 'EMP_CONTROL_BAD_REQUEST'];
    const body = JSON.stringify({ error: { code, message: `bad request: ${err.code ?? err.message}` } });
    endWith(socket, status, body);
  });

  await clearStaleSocket(path);
  await listenPrivately(server, path, options.gid);
  logger.info({ event: 'control-listening', path }, 'control-listening');

  let closing: Promise<void> | undefined;
  return {
    path,
    serve(req, res, access) {
      respond(req, res, req.socket, access);
    },
    attach(e) {
      emperor = e;
      history.attach(e);
      events.attach(e);
      for (const r of e.reconciler.runners.values()) observe(r);
      unsubscribe = e.subscribe(observe);
      unsubscribeReaction = e.onReaction((_name, ms) => {
        reaction.observe(ms / 1000);
      });
    },
    status: () => status(),
    metrics() {
      const s = status();
      return s && renderMetrics(s, ready, reaction, info.startedAt);
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        unsubscribe?.();
        unsubscribeReaction?.();
        events.close();
        history.close();
        for (const a of inflight) a.abort();
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      })),
  };
}

/**
 * Writes a raw error answer and ends. Destroying at once would make a client that is still
 * writing its request fail with EPIPE before it reads the answer: the socket closes when the client
 * closes its side (after reading the answer) or ERROR_LINGER_MS later, whichever is first.
 */
function endWith(socket: Duplex, status: number, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} Error\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body) + 1}\r\nconnection: close\r\n\r\n${body}\n`,
  );
  socket.resume(); // read to the client's end, whatever it sends
  socket.once('end', () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), ERROR_LINGER_MS);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
  });
}

/** Every connection is answering a request (log followers, `--wait`): say so rather than drop it. */
function refuseBusy(socket: Socket, cap: number): void {
  const body = JSON.stringify({
    error: {
      code: 'EMP_CONTROL_BUSY',
      message: `refused: too many connections (all ${cap} are answering requests, such as \`logs -f\` or \`--wait\`); try again when one ends`,
    },
  });
  endWith(socket, 503, body);
}

/** `GET /v1/session`: what this client may do, for the dashboard to show or hide its buttons. */
function session(access: Access): Record<string, unknown> {
  if (access.transport === 'socket') return { transport: 'socket', can_act: true };
  return { transport: 'tcp', can_act: access.token !== undefined, token_file: access.tokens.path };
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://emperor');
  } catch {
    throw new ControlError('EMP_CONTROL_BAD_REQUEST', 'the request target is not a valid URL path');
  }
}

function expect(method: string, wanted: string): void {
  if (method !== wanted)
    throw new ControlError('EMP_CONTROL_METHOD', `use ${wanted} here, not ${method.slice(0, 20)}`);
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) > max)
    throw new ControlError('EMP_CONTROL_BAD_REQUEST', `\`${name}\` must be a whole number from 0 to ${max}`);
  return Number(raw);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request body as a JSON object, refusing more than MAX_BODY_BYTES. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ControlError('EMP_CONTROL_BAD_JSON', 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ControlError('EMP_CONTROL_BAD_JSON', 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

function tooLarge(): ControlError {
  return new ControlError('EMP_CONTROL_TOO_LARGE', `the request body is over ${MAX_BODY_BYTES} bytes`);
}

/** A malformed escape (`%E0%A4%A`) is the client's error, not ours. */
function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ControlError('EMP_CONTROL_BAD_REQUEST', `not a valid URL-encoded vassal name: ${raw}`);
  }
}
