// What booting 3 Node apps beside a serving `processes = 3` vassal costs its latency, by the
// scheduling class of the booting processes (plain, nice 10 as the emperor's boot priority,
// SCHED_IDLE, SCHED_BATCH at nice 19): the apps are started directly (BENCH_DIRECT_PREFIX), three
// times per run, and each variant's p99 is divided by the steady runs' median.
// Usage: [BENCH_RATE=3000] node bench/sockets-boot-sched.mjs [rounds=3] [seconds=6]
import { deadline, fmt, median, sleep, startEmperor } from './lib.mjs';
import {
  RATE_WARMUP_S,
  directStart,
  freePort,
  probe,
  reloadVassal,
  runRate,
  runWrk,
} from './sockets-lib.mjs';
const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 6);
const RATE = Number(process.env.BENCH_RATE ?? 0);
deadline(600_000, 'sockets-boot-sched');
const port = await freePort();
const emperor = await startEmperor({ files: { 'web.ini': reloadVassal('node', port) } });
await emperor.waitLine((l) => l.event === 'running', 'running', 0, 30_000);
for (let i = 0; i < 20; i++) await probe(port);
const load = () =>
  RATE > 0
    ? runRate(port, { rate: RATE, seconds: SECONDS })
    : runWrk(port, { seconds: SECONDS, threads: 2, connections: 32 });
const variants = {
  steady: null,
  plain: '',
  nice10: 'nice -n 10',
  idle: 'chrt -i 0',
  batch19: 'chrt -b 0 nice -n 19',
};
const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  const keys = Object.keys(variants);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[(k + r) % keys.length];
    const prefix = variants[key];
    const t0 = Date.now() + (RATE > 0 ? RATE_WARMUP_S * 1000 : 0);
    const l = load();
    if (prefix !== null) {
      process.env.BENCH_DIRECT_PREFIX = prefix;
      for (let i = 1; i <= 3; i++) {
        await sleep(Math.max(0, t0 + (i * SECONDS * 1000) / 4 - Date.now()));
        await Promise.all([directStart(), directStart(), directStart()]);
      }
    }
    const out = await l;
    res[key].push(out.p99);
  }
}
await emperor.stop();
for (const [k, v] of Object.entries(res))
  console.log(
    k.padEnd(8),
    'p99',
    v.map((x) => fmt(x, 2)).join(' '),
    ' median',
    fmt(median(v), 2),
    ' ratio',
    fmt(median(v) / median(res.steady), 2),
  );
