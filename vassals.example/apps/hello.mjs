// Answers every request with a JSON greeting and who answered it. Needs nothing but Node.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8101);
const started = new Date().toISOString();

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(
    `${JSON.stringify({
      greeting: process.env.GREETING ?? 'hello',
      path: req.url,
      vassal: process.env.EMPEROR_VASSAL,
      generation: Number(process.env.EMPEROR_GENERATION),
      pid: process.pid,
      started,
    })}\n`,
  );
});
server.listen(port, '127.0.0.1', () => {
  console.log(`hello: listening on http://127.0.0.1:${port}/ (pid ${process.pid})`);
});
// Finish the requests under way, then exit: the emperor's stop-signal is SIGTERM.
process.on('SIGTERM', () => {
  console.log('hello: SIGTERM, closing');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
