// Reaction time: `touch` of a vassal file -> the new generation's `spawn` log line.
// t0 is taken just before utimesSync() in this process (sub-ms clock). Reported:
//   line   : arrival of the `spawn` line on the emperor's stdout pipe (sub-ms, what a reader sees)
//   time   : pino's own `time` field of that line minus t0 (ms resolution, no pipe latency)
//   exec'd : the new pid runs the app's binary (/proc/PID/exe, polled every ~0.2 ms after the line)
// Usage: node bench/reaction.mjs [touches=50]
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { realpathSync } from 'node:fs';
import { setImmediate } from 'node:timers';
import {
  deadline,
  exeOf,
  fmt,
  median,
  nowMs,
  percentile,
  printTable,
  result,
  sleep,
  startEmperor,
  verdict,
  vassalIni,
  latencyRow,
} from './lib.mjs';

const TOUCHES = Number(process.argv[2] ?? 50);
deadline(110_000, 'reaction');

const SLEEP = realpathSync('/bin/sleep');
const emperor = await startEmperor({ files: { 'app.ini': vassalIni('/bin/sleep 1000') } });
const file = join(emperor.vassals, 'app.ini');
let gen = (await emperor.waitLine((l) => l.event === 'running', 'first running')).generation;

const line = [];
const logged = [];
const execd = [];
const reload = [];
const exited = [];
for (let i = 0; i < TOUCHES; i++) {
  // Let the previous generation settle, with jitter so touches do not phase-lock to any timer.
  await sleep(150 + Math.random() * 100);
  const from = emperor.lines.length;
  const t0 = nowMs();
  const secs = Date.now() / 1000;
  utimesSync(file, secs, secs); // what `touch` does: same content, new mtime
  const spawned = await emperor.waitLine(
    (l) => l.event === 'spawn' && l.generation === gen + 1,
    `spawn of generation ${gen + 1}`,
    from,
    10_000,
  );
  const reloadLine = emperor.lines.slice(from).find((l) => l.event === 'reload');
  let exeAt;
  for (;;) {
    if (exeOf(spawned.pid) === SLEEP) {
      exeAt = nowMs();
      break;
    }
    if (nowMs() - t0 > 5000) break;
    await new Promise((r) => setImmediate(r));
  }
  gen += 1;
  line.push(spawned._at - t0);
  logged.push(spawned.time - t0);
  execd.push(exeAt === undefined ? NaN : exeAt - t0);
  if (reloadLine) reload.push(reloadLine.time - t0);
  const exitLine = emperor.lines.slice(from).find((l) => l.event === 'exit');
  if (exitLine) exited.push(exitLine.time - t0);
}
await emperor.stop();

printTable(
  `Reaction: touch -> new generation (${TOUCHES} touches of one /bin/sleep vassal, reload = restart), ms from just before utimes()`,
  ['measured to', 'p50', 'p90', 'p99', 'min', 'max'],
  [
    latencyRow('`reload` line, its `time` field', reload),
    latencyRow('old instance `exit` line, `time`', exited),
    latencyRow('`spawn` line, its `time` field', logged),
    latencyRow('`spawn` line arrival on the pipe', line),
    latencyRow("new pid has exec'd /bin/sleep", execd),
  ],
);
const p50 = median(line);
const p99 = percentile(line, 99);
result('touch-spawn', 'emperor', p50, { p99 });
result('touch-exec', 'emperor', median(execd));
console.log(
  `goal median <= 20 ms: ${verdict(p50 <= 20)} (${fmt(p50)}); p99 < 100 ms: ${verdict(p99 < 100)} (${fmt(p99)}) [spawn line arrival]`,
);
