// An HTTP app for the owned-socket benchmarks: keep-alive on, serves on the inherited fd 3 when
// LISTEN_PID is its own pid (else on PORT), says ready on EMPEROR_NOTIFY_FD, and tells when its
// listen callback ran (stdout line and every answer) so a bench can subtract the app's own start.
//
// How it stops on SIGTERM (SHUTDOWN):
// - `sdk` (default): the vassal SDK's gracefulShutdown() (packages/vassal, needs `npx tsc -b`).
// - `own`: the same idea written here: stop accepting, answer every further request on an open
//   connection with `Connection: close`, close a connection only once it has been idle for
//   IDLE_GRACE_MS, default 1000 (a client that just sent a request on it is never cut off).
// The SDK closes an idle connection at the server's keep-alive timeout (Node's default, 5 s,
// here; KEEPALIVE_MS sets another), or after IDLE_GRACE_MS when that is set.
// - `naive`: Node's own `server.close()`, which since Node 19 also destroys every connection that
//   has no request in progress at that instant (a keep-alive connection between two requests):
//   kept to show what that costs.
// Each instance prints a `sigterm` line (open connections at the signal, and how many had no
// request in progress) and, on exit, a `drained` line (answers sent with `Connection: close`).
import http from 'node:http';
import net from 'node:net';
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const env = process.env;
const SHUTDOWN = env.SHUTDOWN ?? 'sdk';
const now = () => performance.timeOrigin + performance.now();
// BENCH_FD3=1: a bench started this process itself with a socket at fd 3 (no LISTEN_PID to set).
const inherited =
  env.BENCH_FD3 === '1' || (env.LISTEN_PID === String(process.pid) && Number(env.LISTEN_FDS) >= 1);
const IDLE_GRACE_MS = Number(env.IDLE_GRACE_MS ?? 1000);
const sdkIdleGrace = env.IDLE_GRACE_MS === undefined ? {} : { idleGraceMs: IDLE_GRACE_MS };
let listenedAt = 0;
let draining = false;
const drained = { closeAnswers: 0 };

/** Per open connection: requests in progress and the time it last finished one (or connected). */
const conns = new Map();
const server = http.createServer((req, res) => {
  const c = conns.get(req.socket);
  if (c) c.busy += 1;
  res.on('close', () => {
    if (!c) return;
    c.busy -= 1;
    c.last = now();
  });
  const body = JSON.stringify({
    pid: process.pid,
    instance: env.EMPEROR_INSTANCE ?? null,
    generation: env.EMPEROR_GENERATION ?? null,
    startedAt: performance.timeOrigin,
    listenedAt,
  });
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-pid', String(process.pid));
  // Tell the client this connection ends here, so it reconnects instead of racing our close.
  if (draining && SHUTDOWN === 'own') res.setHeader('connection', 'close');
  if (res.getHeader('connection') === 'close') drained.closeAnswers += 1;
  res.end(body);
});
if (env.KEEPALIVE_MS !== undefined) server.keepAliveTimeout = Number(env.KEEPALIVE_MS);
server.on('connection', (socket) => {
  conns.set(socket, { busy: 0, last: now() });
  socket.on('close', () => conns.delete(socket));
});

if (SHUTDOWN === 'sdk') {
  const { gracefulShutdown } = await import('../../packages/vassal/dist/src/index.js');
  gracefulShutdown(server, {
    ...sdkIdleGrace,
    ...(env.SPREAD_MS === undefined ? {} : { spreadMs: Number(env.SPREAD_MS) }),
  });
}

server.listen(inherited ? { fd: 3 } : { port: Number(env.PORT ?? 0), host: '127.0.0.1' }, () => {
  listenedAt = now();
  console.log(
    JSON.stringify({ event: 'listening', pid: process.pid, listenedAt, startedAt: performance.timeOrigin }),
  );
  if (env.EMPEROR_NOTIFY_FD) writeSync(Number(env.EMPEROR_NOTIFY_FD), '\n');
});

process.on('exit', () => {
  if (!draining) return;
  console.log(JSON.stringify({ event: 'drained', pid: process.pid, ...drained }));
});
process.on('SIGTERM', () => {
  if (draining) return;
  draining = true;
  let idle = 0;
  for (const c of conns.values()) if (c.busy === 0) idle += 1;
  console.log(JSON.stringify({ event: 'sigterm', pid: process.pid, open: conns.size, idle }));
  if (SHUTDOWN === 'sdk') return; // its own SIGTERM listener drains and exits
  if (SHUTDOWN === 'naive') {
    server.close(() => process.exit(0)); // destroys the `idle` connections counted above, at once
    return;
  }
  // net.Server's close: stop accepting, but skip http.Server's closeIdleConnections().
  net.Server.prototype.close.call(server, () => process.exit(0));
  const sweep = setInterval(() => {
    for (const [socket, c] of conns) if (c.busy === 0 && now() - c.last >= IDLE_GRACE_MS) socket.destroy();
  }, 100);
  sweep.unref();
  setTimeout(() => process.exit(0), 20_000).unref();
});
