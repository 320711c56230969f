// On-demand first connection (issue #5): a sleeping (`waiting`) vassal is woken by a client; the
// time from that client's connect to its answer, minus the same app's own start time measured by
// starting it directly (no emperor) in the same run, interleaved with the wake-ups. `idle = 1`
// puts the vassal back to sleep between wake-ups.
// Usage: node bench/sockets-ondemand.mjs [wakeups=20]
import {
  alive,
  deadline,
  fmt,
  median,
  printTable,
  result,
  sleep,
  startEmperor,
  verdict,
  countedRow,
} from './lib.mjs';
import { APP, NODE, directStart, directWaiting, freePort, printMachine, probe } from './sockets-lib.mjs';

const WAKEUPS = Number(process.argv[2] ?? 20);
deadline(115_000, 'sockets-ondemand');
printMachine();

const port = await freePort();
const emperor = await startEmperor({
  files: {
    'lazy.ini': `[vassal]\nexec = ${NODE} ${APP}\nsocket = 127.0.0.1:${port}\non-demand = true\nidle = 1\n`,
  },
});
await emperor.waitLine((l) => l.event === 'waiting', 'waiting');

const firstAnswer = []; // client connect -> answer, through a waking vassal
const direct = []; // direct spawn -> listen callback
const directAnswer = []; // direct spawn -> first answer on a new connection
const directWaited = []; // client waits on a socket bound here, app spawned directly with it at fd 3 -> answer
const toActivate = []; // connect -> emperor's `activate` line (its `time`)
const toSpawn = []; // connect -> `spawn` line
const spawnToListen = []; // `spawn` line -> the app's listen callback (the app's start under the emperor)
const listenToAnswer = []; // listen callback -> answer received
const failures = [];
let mark = emperor.lines.length;
for (let i = 0; i < WAKEUPS; i++) {
  // The app's own start, measured right before each wake-up under the same load.
  const d = await directStart();
  direct.push(d.startMs);
  directAnswer.push(d.firstAnswerMs);
  directWaited.push((await directWaiting()).answerMs);
  await sleep(50 + Math.random() * 50);

  const r = await probe(port, 10_000);
  if (!r.ok) {
    failures.push(r.error);
    directWaited.pop();
    continue;
  }
  const lines = emperor.lines.slice(mark);
  const activate = lines.find((l) => l.event === 'activate');
  const spawn = await emperor.waitLine((l) => l.event === 'spawn', 'spawn', mark);
  firstAnswer.push(r.t1 - r.t0);
  if (activate) toActivate.push(activate.time - r.t0);
  toSpawn.push(spawn.time - r.t0);
  spawnToListen.push(r.body.listenedAt - spawn.time);
  listenToAnswer.push(r.t1 - r.body.listenedAt);
  if (r.body.pid !== spawn.pid) failures.push(`answered by pid ${r.body.pid}, not the spawned ${spawn.pid}`);

  // Back to sleep: `idle` after 1 s without a connection, then `waiting`, the instance gone.
  const from = emperor.lines.length;
  await emperor
    .waitLine((l) => l.event === 'waiting', 'waiting again', from, 15_000)
    .catch((err) => {
      for (const l of emperor.lines.slice(mark)) console.error(JSON.stringify(l));
      throw err;
    });
  const deadlineAt = Date.now() + 10_000;
  while (alive(spawn.pid) && Date.now() < deadlineAt) await sleep(10);
  mark = emperor.lines.length;
}
const suspicious = emperor.lines.filter(
  (l) => l.level >= 40 || (l.event === 'exit' && (l.code !== 0 || l.signal)),
);
await emperor.stop();

printTable(
  `On-demand wake-up: ${WAKEUPS} wake-ups of a waiting vassal (bench/apps/keepalive-app.mjs, idle = 1), ms`,
  ['measured', 'n', 'p50', 'p90', 'min', 'max'],
  [
    countedRow('**first connection: connect -> answer**', firstAnswer),
    countedRow('  connect -> `activate` line (its `time`, ms resolution)', toActivate),
    countedRow('  connect -> `spawn` line (its `time`)', toSpawn),
    countedRow('  `spawn` line -> app listen callback', spawnToListen),
    countedRow('  listen callback -> answer received', listenToAnswer),
    countedRow('**app started directly: spawn -> listen callback**', direct),
    countedRow('app started directly: spawn -> first answer (new connection after listen)', directAnswer),
    countedRow('**app started directly on a socket with a client waiting: connect -> answer**', directWaited),
  ],
);
const over = median(firstAnswer) - median(direct);
const overWaited = median(firstAnswer) - median(directWaited);
// Paired per wake-up (the direct start ran right before it), which cancels slow drifts of load.
const paired = median(firstAnswer.map((v, i) => v - directWaited[i]));
result('ondemand-over', 'emperor', over, { firstAnswer: median(firstAnswer), appStart: median(direct) });
result('ondemand-failed', 'emperor', failures.length);
console.log(
  `failed or wrong first connections: ${failures.length}${failures.length ? ` (${failures.join('; ')})` : ''}`,
);
for (const l of suspicious) console.log(`- emperor: ${JSON.stringify(l)}`);
console.log(
  `goal first connection - app start <= 10 ms: ${verdict(over <= 10 && failures.length === 0)} ` +
    `(median ${fmt(median(firstAnswer))} - median ${fmt(median(direct))} = ${fmt(over)} ms); ` +
    `against the same app answering a waiting client without an emperor: ${verdict(overWaited <= 10)} ` +
    `(${fmt(median(firstAnswer))} - ${fmt(median(directWaited))} = ${fmt(overWaited)} ms; median of paired differences ${fmt(paired)} ms)`,
);
