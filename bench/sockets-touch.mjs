// Touch to new generation on an owned socket (issue #5): probers loop requests on the vassal's
// socket (a new connection each); after each `touch` of the vassal file, the first answer from a
// new pid ends the measurement. The same app's own start time (spawned directly, spawn -> listen
// callback) is measured in the same run, between touches, while the probers keep going.
// Usage: node bench/sockets-touch.mjs [touches=30] [probers=2]
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import {
  deadline,
  fmt,
  median,
  nowMs,
  printTable,
  result,
  sleep,
  startEmperor,
  verdict,
  countedRow,
} from './lib.mjs';
import { APP, NODE, directStart, freePort, printMachine, probe } from './sockets-lib.mjs';

const TOUCHES = Number(process.argv[2] ?? 30);
const PROBERS = Number(process.argv[3] ?? 2);
deadline(115_000, 'sockets-touch');
printMachine();

const port = await freePort();
const emperor = await startEmperor({
  files: { 'web.ini': `[vassal]\nexec = ${NODE} ${APP}\nsocket = 127.0.0.1:${port}\nready = fd\n` },
});
const file = join(emperor.vassals, 'web.ini');
let gen = (await emperor.waitLine((l) => l.event === 'running', 'running')).generation;

const answers = [];
const failures = [];
let stop = false;
const prober = async () => {
  while (!stop) {
    const r = await probe(port);
    if (r.ok) answers.push({ t1: r.t1, pid: r.body.pid, body: r.body });
    else failures.push({ at: r.t0, error: r.error });
  }
};
const probers = Array.from({ length: PROBERS }, prober);
await sleep(300);

const seen = new Set(answers.map((a) => a.pid));
const toAnswer = []; // touch -> first answer from a new pid
const toReload = []; // touch -> `reload` line (its `time`)
const toSpawn = []; // touch -> `spawn` line
const spawnToListen = []; // `spawn` line -> the new app's listen callback
const execs = []; // `spawn` line arrival -> the new app's Node timeOrigin
const boots = []; // the new app's timeOrigin -> listen callback
const directExecs = [];
const directBoots = [];
const listenToAnswer = []; // listen callback -> first answer from it received
const toOldExit = []; // touch -> old instance `exit` line
const direct = []; // app started directly: spawn -> listen callback
const directAnswer = []; // app started directly: spawn -> first answer
for (let i = 0; i < TOUCHES; i++) {
  await sleep(100 + Math.random() * 100);
  const mark = emperor.lines.length;
  const from = answers.length;
  const t0 = nowMs();
  utimesSync(file, t0 / 1000, t0 / 1000);
  let first;
  while (!first) {
    for (let j = from; j < answers.length && !first; j++) if (!seen.has(answers[j].pid)) first = answers[j];
    if (!first) {
      if (nowMs() - t0 > 10_000) throw new Error(`no new pid answered within 10 s of touch ${i + 1}`);
      await sleep(1);
    }
  }
  const spawn = await emperor.waitLine((l) => l.event === 'spawn' && l.generation === gen + 1, 'spawn', mark);
  const exit = await emperor.waitLine(
    (l) => l.event === 'exit' && l.generation === gen,
    'old exit',
    mark,
    20_000,
  );
  const reload = emperor.lines.slice(mark).find((l) => l.event === 'reload');
  gen += 1;
  for (const a of answers) seen.add(a.pid);
  toAnswer.push(first.t1 - t0);
  if (reload) toReload.push(reload.time - t0);
  toSpawn.push(spawn.time - t0);
  spawnToListen.push(first.body.listenedAt - spawn.time);
  execs.push(first.body.startedAt - spawn._at);
  boots.push(first.body.listenedAt - first.body.startedAt);
  listenToAnswer.push(first.t1 - first.body.listenedAt);
  toOldExit.push(exit.time - t0);
  if (first.pid !== spawn.pid)
    failures.push({ at: first.t1, error: `new pid ${first.pid} is not the spawned ${spawn.pid}` });
  const d = await directStart();
  direct.push(d.startMs);
  directAnswer.push(d.firstAnswerMs);
  directExecs.push(d.execMs);
  directBoots.push(d.bootMs);
}
stop = true;
await Promise.all(probers);
const suspicious = emperor.lines.filter(
  (l) => l.level >= 40 || (l.event === 'exit' && (l.code !== 0 || l.signal)),
);
await emperor.stop();

printTable(
  `Touch -> new generation answering on the owned socket: ${TOUCHES} touches, processes = 1, ready = fd, ${PROBERS} probers (new connection per request), ms`,
  ['measured', 'n', 'p50', 'p90', 'min', 'max'],
  [
    countedRow('**touch -> first answer from the new pid**', toAnswer),
    countedRow('  touch -> `reload` line (its `time`)', toReload),
    countedRow('  touch -> `spawn` line (its `time`)', toSpawn),
    countedRow('  `spawn` line -> new app listen callback', spawnToListen),
    countedRow('    `spawn` line arrival -> new app Node timeOrigin', execs),
    countedRow('    new app timeOrigin -> listen callback', boots),
    countedRow('  listen callback -> its first answer received', listenToAnswer),
    countedRow('touch -> old instance `exit` line', toOldExit),
    countedRow('**app started directly: spawn -> listen callback**', direct),
    countedRow('  spawn -> Node timeOrigin', directExecs),
    countedRow('  timeOrigin -> listen callback', directBoots),
    countedRow('app started directly: spawn -> first answer', directAnswer),
  ],
);
const over = median(toAnswer) - median(direct);
const overAnswer = median(toAnswer) - median(directAnswer);
// Paired per touch (the direct start ran right after it), which cancels slow drifts of load.
const paired = median(toAnswer.map((v, i) => v - direct[i]));
result('touch-answer-over', 'emperor', over, { toAnswer: median(toAnswer), appStart: median(direct) });
result('touch-answer-failed', 'emperor', failures.length);
console.log(
  `probes: ${answers.length} answered, ${failures.length} failed${failures.length ? `: ${JSON.stringify(failures.slice(0, 10))}` : ''}`,
);
for (const l of suspicious) console.log(`- emperor: ${JSON.stringify(l)}`);
console.log(
  `goal median <= 20 ms over app start and no failed probe: ${verdict(over <= 20 && failures.length === 0)} ` +
    `(${fmt(median(toAnswer))} - ${fmt(median(direct))} = ${fmt(over)} ms over spawn -> listen; ` +
    `${fmt(overAnswer)} ms over spawn -> first answer; median of paired differences ${fmt(paired)} ms; ` +
    `${failures.length} failed probes)`,
);
