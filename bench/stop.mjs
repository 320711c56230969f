// Stopping N vassals at once (default 100), apps that exit on SIGTERM.
//   delete : all N files unlinked in one loop; t0 just before the first unlink, done at the Nth
//            `removed` line (arrival) — and every instance's pid is gone;
//   SIGTERM: the emperor gets SIGTERM; t0 just before kill(), done when the emperor has exited
//            (it exits after every vassal has) — and every instance's pid is gone.
// Apps: /bin/sleep (dies of SIGTERM at once) and a tiny Node app (Node's default SIGTERM exit).
// Usage: node bench/stop.mjs [N=100]
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  allGone,
  deadline,
  fmt,
  median,
  nowMs,
  printTable,
  result,
  sleep,
  startEmperor,
  tempDir,
  vassalIni,
  verdict,
} from './lib.mjs';

const N = Number(process.argv[2] ?? 100);
const REPS = Number(process.env.BENCH_REPS ?? 3);
// BENCH_QUICK=1 (npm run bench): /bin/sleep vassals only.
const KINDS = process.env.BENCH_QUICK === '1' ? ['sleep'] : ['sleep', 'node'];
deadline(115_000, 'stop');
const MARKER_APP = join(ROOT, 'bench', 'fixtures', 'marker-app.mjs');

async function running(kind) {
  const marks = join(tempDir(), 'marks');
  mkdirSync(marks);
  const files = {};
  for (let i = 0; i < N; i++) {
    const exec =
      kind === 'node' ? `${process.execPath} ${MARKER_APP} ${join(marks, `a${i}`)}` : '/bin/sleep 1000';
    files[`a${i}.ini`] = vassalIni(exec);
  }
  const emperor = await startEmperor({ files });
  const spawned = await emperor.waitLines((l) => l.event === 'running', N, `${N} running`, 0, 60_000);
  if (kind === 'node') {
    // Running is logged at spawn; wait until every app is really up (its SIGTERM handling included).
    const limit = nowMs() + 60_000;
    while (readdirSync(marks).length < N && nowMs() < limit) await sleep(10);
  }
  await sleep(500);
  return { emperor, pids: spawned.flatMap((l) => String(l.pids).split(',').map(Number)) };
}

async function byDelete(kind) {
  const { emperor, pids } = await running(kind);
  const from = emperor.lines.length;
  const names = readdirSync(emperor.vassals);
  const t0 = nowMs();
  for (const name of names) unlinkSync(join(emperor.vassals, name));
  const removed = await emperor.waitLines((l) => l.event === 'removed', N, `${N} removed`, from, 20_000);
  const tRemoved = Math.max(...removed.map((l) => l._at));
  const tGone = await allGone(pids, 'stop');
  await emperor.stop();
  return { done: tRemoved - t0, gone: tGone - t0 };
}

async function bySigterm(kind) {
  const { emperor, pids } = await running(kind);
  const t0 = nowMs();
  emperor.child.kill('SIGTERM');
  const { at, code } = await emperor.exited;
  const tGone = await allGone(pids, 'stop');
  await emperor.stop();
  if (code !== 0) throw new Error(`emperor exited with ${code}`);
  return { done: at - t0, gone: tGone - t0 };
}

const rows = [];
let worst = 0;
for (const kind of KINDS) {
  for (const [how, fn] of [
    ['delete all files', byDelete],
    ['SIGTERM the emperor', bySigterm],
  ]) {
    const done = [];
    const gone = [];
    for (let r = 0; r < REPS; r++) {
      const x = await fn(kind);
      done.push(x.done);
      gone.push(x.gone);
    }
    worst = Math.max(worst, median(done), median(gone));
    result(`stop-${fn === byDelete ? 'delete' : 'sigterm'}-${kind}-${N}`, 'emperor', median(gone));
    rows.push([
      kind === 'node' ? 'tiny Node app' : '/bin/sleep',
      how,
      fmt(median(done)),
      fmt(Math.max(...done)),
      fmt(median(gone)),
    ]);
  }
}
printTable(
  `Stopping ${N} vassals at once; median of ${REPS} runs, ms from t0`,
  ['app', 'how', 'last `removed` line / emperor exit', 'max', 'all pids gone'],
  rows,
);
console.log(`goal < 1 s: ${verdict(worst < 1000)} (worst median ${fmt(worst)} ms)`);
