// Connection spread (issue #5): how the kernel hands the connections of one owned socket to the
// 4 instances of a `processes = 4` vassal that all accept on it. Counted per instance from the
// answers (each tells its pid): new connections one at a time, 8 at a time, and wrk with
// keep-alive (32 connections) and with `Connection: close` (a new connection per request).
// Usage: node bench/sockets-spread.mjs [connections=2000] [wrkSeconds=5]
import { deadline, fmt, printTable, startEmperor } from './lib.mjs';
import { APP, NODE, freePort, printMachine, probe, runWrk } from './sockets-lib.mjs';

const CONNECTIONS = Number(process.argv[2] ?? 2000);
const WRK_SECONDS = Number(process.argv[3] ?? 5);
deadline(115_000, 'sockets-spread');
printMachine();

const port = await freePort();
const emperor = await startEmperor({
  files: {
    'four.ini': `[vassal]\nexec = ${NODE} ${APP}\nsocket = 127.0.0.1:${port}\nprocesses = 4\nready = fd\n`,
  },
});
await emperor.waitLine((l) => l.event === 'running', 'running');
const instanceOf = new Map(
  emperor.lines.filter((l) => l.event === 'spawn').map((l) => [String(l.pid), l.instance]),
);

/** New connections, `concurrency` at a time; returns answers per pid and failures. */
async function newConnections(total, concurrency) {
  const perPid = {};
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next += 1;
      const r = await probe(port);
      if (r.ok) perPid[r.body.pid] = (perPid[r.body.pid] ?? 0) + 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { perPid, failed };
}

const rows = [];
const add = (label, perPid, failed) => {
  const counts = [0, 1, 2, 3].map(
    (i) => Object.entries(perPid).find(([pid]) => instanceOf.get(String(pid)) === i)?.[1] ?? 0,
  );
  const total = counts.reduce((a, b) => a + b, 0);
  const share = counts.map((c) => `${c} (${fmt((100 * c) / total, 0)}%)`);
  const ratio = Math.max(...counts) / Math.max(1, Math.min(...counts));
  rows.push([label, total, ...share, Number.isFinite(ratio) ? fmt(ratio, 2) : '∞', failed]);
};

for (let i = 0; i < 40; i++) await probe(port); // warm up
let r = await newConnections(CONNECTIONS, 1);
add(`${CONNECTIONS} new connections, 1 at a time`, r.perPid, r.failed);
r = await newConnections(CONNECTIONS, 8);
add(`${CONNECTIONS} new connections, 8 at a time`, r.perPid, r.failed);
let w = await runWrk(port, { seconds: WRK_SECONDS });
add(`wrk -t2 -c32 -d${WRK_SECONDS}s, keep-alive (requests)`, w.pids, w.errors + w.non2xx);
w = await runWrk(port, { seconds: WRK_SECONDS, header: 'Connection: close' });
add(`wrk -t2 -c32 -d${WRK_SECONDS}s, Connection: close (requests)`, w.pids, w.errors + w.non2xx);
await emperor.stop();

printTable(
  'Connection spread over the 4 instances of one vassal (processes = 4, one shared listening socket, no SO_REUSEPORT)',
  ['load', 'answers', 'instance 0', 'instance 1', 'instance 2', 'instance 3', 'max/min', 'failed'],
  rows,
);
