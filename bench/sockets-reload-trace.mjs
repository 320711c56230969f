// Where in a rolling reload the slow requests of an open-loop load fall (issue #5): one steady
// run, then one with 3 touches, each request traced (bench/rate-load.mjs TRACE). Prints, per touch,
// the emperor's events (spawn, running, exit, with the generation) in ms from the touch and the
// latency in windows after it, and per 500 ms of each run the requests slower than the steady p99.
// Usage: [BENCH_RATE=3000] [GUNICORN_READY=notify] node bench/sockets-reload-trace.mjs [node|gunicorn|gunicorn-ready] [seconds=8]
import { readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { deadline, fmt, sleep, startEmperor, tempDir } from './lib.mjs';
import { APP, GUNICORN, NODE, RATE_WARMUP_S, WSGI_DIR, freePort, probe, runRate } from './sockets-lib.mjs';
const APPNAME = process.argv[2] ?? 'node';
const SECONDS = Number(process.argv[3] ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 3000);
const RELOADS = 3;
deadline(120_000, 'sockets-reload-trace');
const port = await freePort();
const ini = APPNAME.startsWith('gunicorn')
  ? `[vassal]\nexec = ${GUNICORN} ${APPNAME === 'gunicorn-ready' ? `-c ${join(WSGI_DIR, '..', '..', 'contrib', 'gunicorn', 'ready.py')} ` : ''}--workers 2 --chdir ${WSGI_DIR} wsgi_app:app\nsocket = 127.0.0.1:${port}\nprocesses = 3\nready = ${process.env.GUNICORN_READY ?? 'notify'}\n`
  : `[vassal]\nexec = ${NODE} ${APP}\nsocket = 127.0.0.1:${port}\nprocesses = 3\nready = fd\nenv = SHUTDOWN=sdk\n`;
const emperor = await startEmperor({ files: { 'web.ini': ini } });
const file = join(emperor.vassals, 'web.ini');
let gen = (await emperor.waitLine((l) => l.event === 'running', 'running', 0, 30_000)).generation;
for (let i = 0; i < 20; i++) await probe(port);
const trace = join(tempDir('emp-trace-'), 'trace.txt');
for (const mode of ['steady', 'reload']) {
  const from = emperor.lines.length;
  const t0 = Date.now() + RATE_WARMUP_S * 1000;
  const loaded = runRate(port, { rate: RATE, seconds: SECONDS, trace });
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
  await sleep(6000);
  const pts = readFileSync(trace, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([s, lat, ...why]) => [r.startEpochMs + Number(s), Number(lat), why.join(' ')]);
  const fails = pts.filter((p) => p[1] < 0).map((p) => `${Math.round(p[0] - r.startEpochMs)} ${p[2]}`);
  if (fails.length) console.log('FAILED at ms', fails.join(' '));
  pts.splice(0, pts.length, ...pts.filter((p) => p[1] >= 0));
  const sorted = pts.map((p) => p[1]).sort((a, b) => a - b);
  const p99 = sorted[Math.floor(0.99 * sorted.length)];
  console.log(
    `\n${APPNAME} ${mode}: p50 ${fmt(sorted[sorted.length >> 1], 2)} p99 ${fmt(p99, 2)} max ${fmt(sorted.at(-1), 1)} (n=${sorted.length})`,
  );
  const buckets = new Array(Math.ceil(SECONDS * 2) + 2).fill(0);
  for (const [s, l] of pts)
    if (l > (globalThis.steadyP99 ?? p99)) buckets[Math.floor((s - r.startEpochMs) / 500)] += 1;
  console.log(`  over steady p99, per 500 ms from the start: ${buckets.join(' ')}`);
  globalThis.steadyP99 ??= p99;
  if (mode !== 'reload') continue;
  const ev = emperor.lines
    .slice(from)
    .filter((l) =>
      ['spawn', 'ready', 'running', 'stop', 'exit', 'retire', 'priority'].some((e) =>
        String(l.event).includes(e),
      ),
    );
  for (const t of touches) {
    const rel = (x) => Math.round(x - t);
    const evs = ev
      .filter((l) => l.time >= t - 10 && l.time < t + 7000)
      .map((l) => `${l.event}${l.generation ?? ''}@${rel(l.time)}`);
    console.log(`touch @${t}: ${evs.join(' ')}`);
    const wins = [
      [-1000, 0],
      [0, 100],
      [100, 200],
      [200, 400],
      [400, 800],
      [800, 1500],
      [1500, 3000],
      [3000, 6000],
    ];
    const cells = wins.map(([a, b]) => {
      const w = pts
        .filter(([s]) => s - t >= a && s - t < b)
        .map((p) => p[1])
        .sort((x, y) => x - y);
      const slow = w.filter((x) => x > p99).length;
      return `[${a},${b}) n=${w.length} p99=${fmt(w[Math.floor(0.99 * w.length)] ?? 0, 1)} >p99:${slow}`;
    });
    console.log('  ' + cells.join('\n  '));
  }
  const near = pts.filter(([s, l]) => l > p99 && !touches.some((t) => s - t >= -100 && s - t < 3000)).length;
  console.log(
    `slow (> run p99) requests not within [-0.1, 3) s of a touch: ${near} of ${pts.filter((p) => p[1] > p99).length}`,
  );
}
await emperor.stop();
