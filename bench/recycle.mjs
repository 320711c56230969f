// Recycling under load (issue #13): wrk against a `processes = 3` Node vassal on an owned socket
// (bench/apps/keepalive-app.mjs, keep-alive, drained by the vassal SDK, ready = fd), once in
// steady state and once with `max-lifetime` short enough that instances are replaced during the
// run, in one emperor, the runs interleaved (each round rotates their order, so a drift of the
// machine's load favours neither). Reports failed requests (wrk's connect/read/write/timeout
// errors and non-2xx: goal 0) and p50/p99/max latency, and the recycles that happened.
// Then (unless sampled = 0) what the `max-rss` sampler costs: the emperor's CPU with N sleeping
// vassals of which none, 10 or all have a `max-rss`.
// Usage: node bench/recycle.mjs [seconds=10] [max-lifetime=3] [rounds=1] [sampled=1000]
// BENCH_RATE=N replaces wrk by an open-loop load of N requests/s (bench/rate-load.mjs).
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deadline, fmt, idleUsage, median, printTable, result, startEmperor, verdict } from './lib.mjs';
import { APP, NODE, RATE_WARMUP_S, freePort, printMachine, probe, runRate, runWrk } from './sockets-lib.mjs';

const SECONDS = Number(process.argv[2] ?? 10);
const LIFETIME_S = Number(process.argv[3] ?? 3);
const ROUNDS = Number(process.argv[4] ?? 1);
const SAMPLED = Number(process.argv[5] ?? 1000);
const LOAD = { threads: 2, connections: 32 };
const RATE = Number(process.env.BENCH_RATE ?? 0);
deadline(60_000 + ROUNDS * 2 * (SECONDS + 25) * 1000 + (SAMPLED > 0 ? 300_000 : 0), 'recycle');
printMachine();

function load(port) {
  if (RATE > 0) return runRate(port, { rate: RATE, seconds: SECONDS, connections: LOAD.connections });
  return runWrk(port, { seconds: SECONDS, ...LOAD });
}

const vassal = (port, extra) =>
  `[vassal]\nexec = ${NODE} ${APP}\nsocket = 127.0.0.1:${port}\nprocesses = 3\nready = fd\nstop-timeout = 15\n${extra}`;

const emperor = await startEmperor();
const rows = [];
const runs = { steady: [], recycling: [] };

/** Starts vassal `name`, loads it for SECONDS, removes it; returns wrk's report and the recycles. */
async function run(kind, round) {
  const name = `${kind}${round}`;
  const port = await freePort();
  const file = join(emperor.vassals, `${name}.ini`);
  const from = emperor.lines.length;
  writeFileSync(file, vassal(port, kind === 'recycling' ? `max-lifetime = ${LIFETIME_S}\n` : ''));
  await emperor.waitLine((l) => l.event === 'running' && l.vassal === name, `${name} running`, from, 30_000);
  for (let i = 0; i < 20; i++) await probe(port); // every instance has accepted once
  const mark = emperor.lines.length;
  const r = await load(port);
  const lines = emperor.lines.slice(mark).filter((l) => l.vassal === name);
  const recycled = lines.filter((l) => l.event === 'recycled').length;
  const warnings = lines.filter((l) => l.level >= 40 && l.event !== 'recycle');
  rmSync(file);
  await emperor.waitLine((l) => l.event === 'removed' && l.vassal === name, `${name} removed`, mark, 30_000);
  rows.push([
    kind,
    round,
    r.requests,
    fmt(r.rps, 0),
    r.errors,
    r.non2xx,
    fmt(r.p50, 2),
    fmt(r.p99, 2),
    fmt(r.max, 1),
    recycled,
  ]);
  for (const w of warnings) console.log(`- ${name}: emperor ${JSON.stringify(w)}`);
  return { ...r, recycled };
}

for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? ['steady', 'recycling'] : ['recycling', 'steady'];
  for (const kind of order) runs[kind].push(await run(kind, round));
}
await emperor.stop();

printTable(
  `Recycling under load: ${RATE > 0 ? `open loop at ${RATE} req/s (bench/rate-load.mjs, ${RATE_WARMUP_S} s warm-up)` : `wrk -t${LOAD.threads} -c${LOAD.connections} -d${SECONDS}s`} on one owned socket, processes = 3, max-lifetime = ${LIFETIME_S} s in the recycling runs (latency in ms)`,
  ['run', 'round', 'requests', 'req/s', 'errors', 'non-2xx', 'p50', 'p99', 'max', 'recycled'],
  rows,
);
const failed = runs.recycling.reduce((a, r) => a + r.errors + r.non2xx, 0);
const steadyFailed = runs.steady.reduce((a, r) => a + r.errors + r.non2xx, 0);
const recycles = runs.recycling.reduce((a, r) => a + r.recycled, 0);
const ratio = median(runs.recycling.map((r) => r.p99)) / median(runs.steady.map((r) => r.p99));
result('recycle-failed', 'emperor', failed, {
  requests: runs.recycling.reduce((a, r) => a + r.requests, 0),
  recycles,
});
result('recycle-p99-ratio', 'emperor', ratio, {
  steady: median(runs.steady.map((r) => r.p99)),
  recycling: median(runs.recycling.map((r) => r.p99)),
});
console.log(
  `goal 0 failed while recycling: ${verdict(failed === 0)} (${failed} in ${recycles} recycles; steady runs: ${steadyFailed}); ` +
    `p99 while recycling / steady: ${fmt(ratio, 2)}x`,
);

if (SAMPLED > 0) await samplerCost(SAMPLED);

/**
 * What the `max-rss` sampler costs the emperor: its CPU (utime + stime, % of a core over IDLE_S
 * seconds, after SETTLE_S) with `n` sleeping vassals of which none, 10, or all have a `max-rss`
 * (never reached), one emperor each, in the containment the machine gives (BENCH_EMPEROR_ARGS
 * `--containment subreaper` for the other way).
 */
async function samplerCost(n) {
  const settleS = Number(process.env.SETTLE_S ?? 5);
  const idleS = Number(process.env.IDLE_S ?? 10);
  const costRows = [];
  for (const limited of [0, 10, n]) {
    const files = {};
    for (let i = 0; i < n; i++)
      files[`s${i}.ini`] = `[vassal]\nexec = /bin/sleep 600\n${i < limited ? 'max-rss = 1G\n' : ''}`;
    const emp = await startEmperor({ files });
    await emp.waitLines((l) => l.event === 'running', n, `${n} vassals running`, 0, 120_000);
    const mode = emp.lines.find((l) => l.event === 'containment')?.mode;
    const { cpu, rss } = await idleUsage(emp.pid, settleS, idleS);
    await emp.stop();
    costRows.push([`${n} vassals, ${limited} with max-rss`, mode, fmt(cpu, 2), fmt(rss, 1)]);
    result(`rss-sampler-cpu-${n}-${limited}`, 'emperor', cpu);
  }
  printTable(
    `The emperor's CPU while the max-rss sampler runs once a second (${idleS} s after ${settleS} s settling), sleeping vassals`,
    ['vassals', 'containment', 'CPU % of a core', 'emperor RSS MiB'],
    costRows,
  );
}
