// PM2 side by side (skipped when PM2 is not found): the measurements of SPEC §7 that PM2 has an
// equivalent for, through its programmatic API (what `pm2 start/restart/delete/reload` send to
// its daemon, without the CLI's own Node start-up). Found as BENCH_PM2 (the `pm2` package dir),
// on PATH, or in the bench cache (`npm run bench -- --fetch`). PM2_HOME is a temp dir, so the
// daemon ("God") and its files are this bench's own; PM2_KILL_SIGNAL=SIGTERM (PM2's default is
// SIGINT) so that apps stop on the same signal as under the emperor. Apps run in fork mode with
// `interpreter: none` (PM2 spawns the command itself), except the reload, which needs cluster mode.
//   footprint: the daemon's VmRSS and idle CPU with N apps
//   cold     : start of N /bin/sleep apps on the running daemon -> every one of the daemon's
//              children runs /bin/sleep (the emperor's "files dropped into a running emperor")
//   stop     : `pm2.delete('all')` -> every app pid gone
//   reaction : `pm2.restart(name)` of one /bin/sleep app -> a new child runs /bin/sleep
//   log      : a program writing BYTES to stdout as fast as it can -> PM2's out_file has them
//   reload   : wrk against 3 cluster-mode instances of bench/apps/keepalive-app.mjs (its own drain
//              on SIGTERM), steady, then with RELOADS `pm2.reload()` calls during the run
// Usage: node bench/pm2.mjs [N=100] (env: SETTLE_S=5 IDLE_S=5 TOUCHES=15 LOG_BYTES=256 MiB
// SECONDS=5 RELOADS=3)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  CACHE,
  CLK_TCK,
  ROOT,
  allGone,
  childrenRunning,
  cpuTicks,
  deadline,
  fmt,
  idleUsage,
  median,
  nowMs,
  percentile,
  printTable,
  result,
  sleep,
  tempDir,
  track,
} from './lib.mjs';
import { APP, freePort, probe, runRate, runWrk } from './sockets-lib.mjs';

const N = Number(process.argv[2] ?? 100);
const SETTLE_S = Number(process.env.SETTLE_S ?? 5);
const IDLE_S = Number(process.env.IDLE_S ?? 5);
const TOUCHES = Number(process.env.TOUCHES ?? 15);
const LOG_BYTES = Number(process.env.LOG_BYTES ?? 256 * 1024 * 1024);
const SECONDS = Number(process.env.SECONDS ?? 5);
const RELOADS = Number(process.env.RELOADS ?? 3);
const MiB = 1024 * 1024;
// BENCH_RATE=N: an open-loop load of N requests/s (bench/rate-load.mjs) in place of wrk, as in
// sockets-reload.mjs.
const RATE = Number(process.env.BENCH_RATE ?? 0);
/** A load run: `{ done, countedFrom }`, the report and when its counted part starts (ms). */
function load(port) {
  if (RATE === 0) return { done: runWrk(port, { seconds: SECONDS }), countedFrom: Promise.resolve(nowMs()) };
  let onStart;
  const countedFrom = new Promise((resolve) => (onStart = resolve));
  return { done: runRate(port, { rate: RATE, seconds: SECONDS, onStart }), countedFrom };
}

/** The pm2 package directory, or undefined. */
function findPm2() {
  const candidates = [process.env.BENCH_PM2, join(CACHE, 'pm2', 'node_modules', 'pm2')];
  try {
    const bin = execFileSync('sh', ['-c', 'command -v pm2'], { encoding: 'utf8' }).trim();
    // bin/pm2 in the package, linked from the prefix's bin
    if (bin) candidates.splice(1, 0, dirname(dirname(realpathSync(bin))));
  } catch {
    // not on PATH
  }
  return candidates.find((d) => d && existsSync(join(d, 'package.json')));
}

const pkg = findPm2();
if (!pkg) {
  console.log('pm2 not found (on PATH, BENCH_PM2, or `npm run bench -- --fetch`); skipped');
  process.exit(0);
}
deadline(170_000, 'pm2');
const version = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
const home = tempDir('emp-bench-pm2-');
// Before PM2 is loaded: it reads these once, and its daemon inherits them.
process.env.PM2_HOME = home;
process.env.PM2_KILL_SIGNAL = 'SIGTERM';
delete process.env.NODE_EXTRA_CA_CERTS;
const pm2 = createRequire(import.meta.url)(pkg);
const call = (method, ...args) =>
  new Promise((done, fail) => pm2[method](...args, (err, r) => (err ? fail(err) : done(r))));

const SLEEP = realpathSync('/bin/sleep');
let god;
async function connect() {
  await call('connect');
  god = Number(readFileSync(join(home, 'pm2.pid'), 'utf8'));
  track(god);
}
/** Resolves once `n` children of the daemon not in `old` run /bin/sleep: their pids. */
const sleepers = (n, old, timeout) => childrenRunning(god, SLEEP, n, 'pm2', old, timeout);
const sleepApps = (n) =>
  Array.from({ length: n }, (_, i) => ({
    name: `a${i}`,
    script: '/bin/sleep',
    args: '1000',
    interpreter: 'none',
    autorestart: false,
  }));
const gone = (pids) => allGone(pids, 'pm2');
const idle = () => idleUsage(god, SETTLE_S, IDLE_S);

const rows = [];
try {
  // footprint, cold start, stop
  await connect();
  let t0 = nowMs();
  await call('start', { apps: sleepApps(N) });
  const pids = await sleepers(N);
  const added = nowMs() - t0;
  result(`cold-drop-sleep-${N}`, 'pm2', added);
  rows.push([`${N} apps started on the running daemon -> all exec'd /bin/sleep`, fmt(added)]);
  const withN = await idle();
  result(`rss-${N}`, 'pm2', withN.rss);
  result(`idle-cpu-${N}`, 'pm2', withN.cpu);
  rows.push([`daemon VmRSS with ${N} apps, MiB / idle CPU %`, `${fmt(withN.rss)} / ${fmt(withN.cpu, 2)}`]);
  t0 = nowMs();
  await call('delete', 'all');
  const stop = (await gone(pids)) - t0;
  result(`stop-delete-sleep-${N}`, 'pm2', stop);
  rows.push([`delete all ${N} -> pids gone`, fmt(stop)]);

  // reaction
  await call('start', sleepApps(1)[0]);
  let [pid] = await sleepers(1);
  const restart = [];
  for (let i = 0; i < TOUCHES; i++) {
    await sleep(150 + Math.random() * 100);
    t0 = nowMs();
    await call('restart', 'a0');
    [pid] = await sleepers(1, new Set([pid]), 10_000);
    restart.push(nowMs() - t0);
  }
  result('touch-exec', 'pm2', median(restart), { p99: percentile(restart, 99) });
  rows.push([
    `restart -> new pid exec'd, p50 / p99 of ${TOUCHES}`,
    `${fmt(median(restart))} / ${fmt(percentile(restart, 99))}`,
  ]);
  await call('delete', 'all');
  await gone([pid]);

  // log
  const dir = tempDir('emp-bench-pm2-log-');
  const out = join(dir, 'burst.log');
  const mark = join(dir, 'burst.mark');
  const writer = join(ROOT, 'bench', 'fixtures', 'log-burst.mjs');
  execFileSync('sync', ['-f', dir]);
  const c0 = cpuTicks(god);
  await call('start', {
    name: 'burst',
    script: process.execPath,
    args: [writer, String(LOG_BYTES), '-', mark],
    interpreter: 'none',
    autorestart: false,
    out_file: out,
    error_file: join(dir, 'burst.err'),
  });
  const limit = nowMs() + 60_000;
  let size = 0;
  while ((size = existsSync(out) ? statSync(out).size : 0) < LOG_BYTES && nowMs() < limit) await sleep(2);
  const seconds = (nowMs() - Number(readFileSync(mark, 'utf8'))) / 1000;
  const cpuS = (cpuTicks(god) - c0) / CLK_TCK;
  const rate = size / MiB / seconds;
  result('log-rate', 'pm2', rate, { bytes: size });
  result('log-cpu', 'pm2', cpuS / (LOG_BYTES / 1024 ** 3));
  result('log-dropped', 'pm2', LOG_BYTES - size);
  rows.push([
    `${fmt(LOG_BYTES / MiB, 0)} MiB to stdout -> out_file, MiB/s / daemon CPU s per GiB`,
    `${fmt(rate, 0)} / ${fmt(cpuS / (LOG_BYTES / 1024 ** 3), 2)}`,
  ]);
  await call('delete', 'all');
  rmSync(dir, { recursive: true, force: true });

  // reload under load (cluster mode: the daemon holds the port and hands connections round-robin)
  const port = await freePort();
  await call('start', {
    name: 'web',
    script: APP,
    exec_mode: 'cluster',
    instances: 3,
    env: { PORT: String(port), SHUTDOWN: 'own' },
    kill_timeout: 15_000,
  });
  const warmLimit = nowMs() + 30_000;
  while (!(await probe(port)).ok && nowMs() < warmLimit) await sleep(50);
  for (let i = 0; i < 20; i++) await probe(port);
  const steady = await load(port).done;
  const run = load(port);
  const start = await run.countedFrom;
  for (let i = 1; i <= RELOADS; i++) {
    await sleep(Math.max(0, start + (i * SECONDS * 1000) / (RELOADS + 1) - nowMs()));
    await call('reload', 'web');
  }
  const reloaded = await run.done;
  const failed = reloaded.errors + reloaded.non2xx;
  result('reload-failed', 'pm2', failed, { requests: reloaded.requests });
  result('reload-p99-ratio', 'pm2', reloaded.p99 / steady.p99, {
    steady: steady.p99,
    reloaded: reloaded.p99,
  });
  rows.push([
    `${RATE ? `${RATE} req/s` : 'wrk -t2 -c32'} ${SECONDS} s, ${RELOADS} pm2.reload(): failed / p99 steady -> reloading, ms`,
    `${failed} of ${reloaded.requests} / ${fmt(steady.p99, 2)} -> ${fmt(reloaded.p99, 2)}`,
  ]);
  await call('delete', 'all');
} finally {
  await call('killDaemon').catch(() => undefined);
  pm2.disconnect();
  if (god) await gone([god]).catch(() => undefined); // else lib's exit handler SIGKILLs it
}
printTable(
  `PM2 ${version} (API, fork mode, PM2_KILL_SIGNAL=SIGTERM), ms unless said`,
  ['measured', 'PM2'],
  rows,
);
process.exit(0);
