// Where in a rolling reload the slow requests of an open-loop load fall (issue #5): one steady
// run, then one with 3 touches, each request traced (bench/rate-load.mjs TRACE). Prints, per touch,
// the emperor's events (spawn, running, exit, with the generation) in ms from the touch and the
// latency in windows after it (up to the next touch), and per 500 ms of each run the requests
// slower than the steady run's p99.
// Usage: [BENCH_RATE=3000] [GUNICORN_READY=notify] node bench/sockets-reload-trace.mjs [node|gunicorn|gunicorn-ready][+rn] [seconds=8]
import { readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { deadline, fmt, sleep, startEmperor, tempDir } from './lib.mjs';
import { freePort, probe, reloadVassal, runRate } from './sockets-lib.mjs';
const APPNAME = process.argv[2] ?? 'node';
const SECONDS = Number(process.argv[3] ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 3000);
const RELOADS = 3;
deadline(120_000, 'sockets-reload-trace');
const port = await freePort();
const ini = reloadVassal(APPNAME, port);
const emperor = await startEmperor({ files: { 'web.ini': ini } });
const file = join(emperor.vassals, 'web.ini');
let gen = (await emperor.waitLine((l) => l.event === 'running', 'running', 0, 30_000)).generation;
for (let i = 0; i < 20; i++) await probe(port);
const trace = join(tempDir('emp-trace-'), 'trace.txt');
const WINDOWS = [
  [-1000, 0],
  [0, 100],
  [100, 200],
  [200, 400],
  [400, 800],
  [800, 1500],
  [1500, 3000],
  [3000, 6000],
];
let steadyP99;
for (const mode of ['steady', 'reload']) {
  const from = emperor.lines.length;
  let onStart;
  const countedFrom = new Promise((resolve) => (onStart = resolve));
  const loaded = runRate(port, { rate: RATE, seconds: SECONDS, trace, onStart });
  const t0 = await countedFrom;
  const touches = [];
  if (mode === 'reload')
    for (let i = 1; i <= RELOADS; i++) {
      await sleep(Math.max(0, t0 + (i * SECONDS * 1000) / (RELOADS + 1) - Date.now()));
      const t = Date.now();
      const mark = emperor.lines.length;
      utimesSync(file, t / 1000, t / 1000);
      touches.push(t);
      await emperor.waitLine(
        (l) => l.event === 'running' && l.generation === gen + 1,
        'running',
        mark,
        30_000,
      );
      gen += 1;
    }
  const r = await loaded;
  await sleep(6000); // the last old generation drains: its exits appear in the events
  const all = readFileSync(trace, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([at, latency, ...why]) => ({
      at: r.startEpochMs + Number(at),
      latency: Number(latency),
      why: why.join(' '),
    }));
  const fails = all.filter((p) => p.latency < 0);
  if (fails.length)
    console.log(`FAILED: ${fails.map((p) => `${Math.round(p.at - r.startEpochMs)} ms ${p.why}`).join(', ')}`);
  const pts = all.filter((p) => p.latency >= 0);
  const sorted = pts.map((p) => p.latency).sort((a, b) => a - b);
  const p99 = sorted[Math.floor(0.99 * sorted.length)];
  steadyP99 ??= p99; // the steady run comes first: every count below is against its p99
  console.log(
    `\n${APPNAME} ${mode}: p50 ${fmt(sorted[sorted.length >> 1], 2)} p99 ${fmt(p99, 2)} max ${fmt(sorted.at(-1), 1)} (n=${sorted.length})`,
  );
  const buckets = new Array(Math.ceil(SECONDS * 2)).fill(0);
  for (const p of pts) if (p.latency > steadyP99) buckets[Math.floor((p.at - r.startEpochMs) / 500)] += 1;
  console.log(`  slower than the steady p99 (${fmt(steadyP99, 2)} ms), per 500 ms: ${buckets.join(' ')}`);
  if (mode !== 'reload') continue;
  const events = emperor.lines
    .slice(from)
    .filter((l) => ['spawn', 'running', 'exit'].includes(l.event) && l.generation !== undefined);
  for (const [k, t] of touches.entries()) {
    // Up to the next touch (or the end of the run): a window never counts the next reload.
    const until = touches[k + 1] ?? r.startEpochMs + SECONDS * 1000;
    const rel = (x) => Math.round(x - t);
    const evs = events
      .filter((l) => l.time >= t - 10 && l.time < until)
      .map((l) => `${l.event}${l.generation}@${rel(l.time)}`);
    console.log(`touch ${k + 1} (events in ms from it): ${evs.join(' ')}`);
    for (const [a, b] of WINDOWS) {
      const w = pts
        .filter((p) => p.at - t >= a && p.at - t < b && p.at < until)
        .map((p) => p.latency)
        .sort((x, y) => x - y);
      if (w.length === 0) continue;
      const slow = w.filter((x) => x > steadyP99).length;
      console.log(
        `  [${a}, ${b}) ms: n=${w.length} p99=${fmt(w[Math.floor(0.99 * w.length)], 1)} slower than steady p99: ${slow}`,
      );
    }
  }
}
await emperor.stop();
