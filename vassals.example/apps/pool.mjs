// An app on a socket the emperor owns: it takes fd 3 (LISTEN_FDS), says when it is ready, and
// drains on SIGTERM, with the SDK in packages/vassal. Several instances share the one socket.
import http from 'node:http';
import { gracefulShutdown, identity, listen, ready } from '@emperor/vassal';

// undefined when run by hand: `PORT=8104 node vassals.example/apps/pool.mjs`
const me = identity() ?? { vassal: 'pool', instance: 0, generation: 0 };
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(
    `${JSON.stringify({ vassal: me.vassal, instance: me.instance, generation: me.generation, pid: process.pid, path: req.url })}\n`,
  );
});
await listen(server); // the inherited socket; PORT when run by hand
gracefulShutdown(server);
ready();
console.log(`${me.vassal}/${me.instance}: serving generation ${me.generation} (pid ${process.pid})`);
