// Counts seconds and requests; SIGHUP resets the counters without restarting (the vassal says
// `reload = signal:SIGHUP`). Instance N of the vassal listens on BASE_PORT + N.
import http from 'node:http';

const instance = Number(process.env.EMPEROR_INSTANCE ?? 0);
const port = Number(process.env.BASE_PORT ?? 8102) + instance;
let since = Date.now();
let requests = 0;
let reloads = 0;

const server = http.createServer((req, res) => {
  requests += 1;
  res.setHeader('content-type', 'application/json');
  res.end(
    `${JSON.stringify({
      vassal: process.env.EMPEROR_VASSAL,
      instance,
      generation: Number(process.env.EMPEROR_GENERATION),
      pid: process.pid,
      seconds: Math.round((Date.now() - since) / 1000),
      requests,
      reloads,
    })}\n`,
  );
});
server.listen(port, '127.0.0.1', () => {
  console.log(`ticker ${instance}: listening on http://127.0.0.1:${port}/ (pid ${process.pid})`);
});
setInterval(() => {
  console.log(`ticker ${instance}: ${requests} requests in ${Math.round((Date.now() - since) / 1000)} s`);
}, 30_000).unref();
process.on('SIGHUP', () => {
  reloads += 1;
  since = Date.now();
  requests = 0;
  console.log(`ticker ${instance}: SIGHUP, counters reset (reload ${reloads})`);
});
process.on('SIGTERM', () => {
  console.log(`ticker ${instance}: SIGTERM, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
