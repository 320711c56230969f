// Rolling reload under load (issue #5): wrk against a `processes = 3` vassal on an owned socket,
// once in steady state and once with RELOADS touches of the vassal file during the run. Reports
// every wrk error counter (connect/read/write/timeout, non-2xx) and p50/p99/max latency.
// Apps: `node` (bench/apps/keepalive-app.mjs, keep-alive, drained by the vassal SDK's
// gracefulShutdown(), ready = fd), `nodeMS` such as `node0` (the same with the SDK's spreadMs = MS), `own` (the same app with the bench's own drain), `naive` (the
// same app with Node's own server.close(), which destroys idle keep-alive connections), and
// `gunicorn` (Debian's, 2 sync workers per instance, ready = notify), and `gunicorn-ready` (the
// same with contrib/gunicorn/ready.py: READY=1 once its workers have loaded the app). A `+rn`
// suffix (`gunicorn-ready+rn`) gives the vassal `retire-nice = 10`.
// For the Node apps a third, control run starts 3 copies of the same app directly (no emperor,
// own ports) at the same moments instead of reloading: what the CPU of booting a generation
// costs the instances serving, with no socket hand-over at all.
// Usage: node bench/sockets-reload.mjs [apps=node,gunicorn] [seconds=10] [reloads=3] [rounds=1] [threads=2] [connections=32]
// (each round rotates the order of its runs, so a drift of the machine's load favours none.)
// GUNICORN_ARGS adds arguments to the gunicorn command line (e.g. --preload); BENCH_RATE=N
// replaces wrk by an open-loop load of N requests/s (bench/rate-load.mjs); GUNICORN_READY sets
// gunicorn's `ready` (default notify). The Node app keeps Node's keep-alive timeout (5 s), which the
// SDK's drain waits for before closing an idle connection (KEEPALIVE_MS in its env changes it).
import { existsSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { deadline, fmt, median, printTable, result, sleep, startEmperor, verdict } from './lib.mjs';
import {
  GUNICORN,
  RATE_WARMUP_S,
  directStart,
  freePort,
  printMachine,
  probe,
  reloadVassal,
  runRate,
  runWrk,
} from './sockets-lib.mjs';

const APPS = (process.argv[2] ?? 'node,gunicorn').split(',');
const SECONDS = Number(process.argv[3] ?? 10);
const RELOADS = Number(process.argv[4] ?? 3);
const ROUNDS = Number(process.argv[5] ?? 1);
const LOAD = { threads: Number(process.argv[6] ?? 2), connections: Number(process.argv[7] ?? 32) };
// Each run lasts SECONDS (plus rate-load's warm-up) and up to ~10 s of drains and probes.
deadline(Math.max(115_000, 30_000 + APPS.length * ROUNDS * 3 * (SECONDS + 12) * 1000), 'sockets-reload');
// BENCH_RATE=N: an open-loop load of N requests/s (bench/rate-load.mjs) in place of wrk.
const RATE = Number(process.env.BENCH_RATE ?? 0);
/** Starts a load run: `{ done, countedFrom }`, the report and when its counted part starts (ms). */
function load(port) {
  if (RATE === 0) return { done: runWrk(port, { seconds: SECONDS, ...LOAD }), countedFrom: Date.now() };
  let onStart;
  const countedFrom = new Promise((resolve) => (onStart = resolve));
  const done = runRate(port, { rate: RATE, seconds: SECONDS, connections: LOAD.connections, onStart });
  return { done, countedFrom };
}
printMachine();

const isGunicorn = (app) => app.startsWith('gunicorn');

const rows = [];
const notes = [];
const verdicts = [];
// One emperor holds every app's vassal, each on its own port, and each round runs every app in
// turn (the order rotating): a drift of the machine's load over the run favours no app.
const apps = APPS.filter((app) => {
  if (isGunicorn(app) && !existsSync(GUNICORN)) console.log(`skipping ${app}: ${GUNICORN} is not installed`);
  return !isGunicorn(app) || existsSync(GUNICORN);
});
const ports = [];
while (ports.length < apps.length) ports.push(await freePort());
const emperor = await startEmperor({
  files: Object.fromEntries(apps.map((app, k) => [`v${k}.ini`, reloadVassal(app, ports[k])])),
});
const subjects = [];
for (const [k, app] of apps.entries()) {
  const name = `v${k}`;
  const first = await emperor.waitLine(
    (l) => l.event === 'running' && l.vassal === name,
    `${app} running`,
    0,
    30_000,
  );
  for (let i = 0; i < 20; i++) await probe(ports[k]); // warm up: every instance has accepted once
  subjects.push(subject(app, name, ports[k], first.generation));
}

/** The runs of one app's vassal. */
function subject(app, name, port, firstGeneration) {
  const file = join(emperor.vassals, `${name}.ini`);
  const mine = (l) => l.vassal === name;
  let gen = firstGeneration;

  /** One load run with RELOADS touches spread evenly over it; each waits for the previous one. */
  const reloadRun = async () => {
    const from = emperor.lines.length;
    // rate-load counts from the end of its warm-up: the touches fall within the counted part.
    const run = load(port);
    const startedAt = await run.countedFrom;
    const readyMs = [];
    for (let i = 1; i <= RELOADS; i++) {
      await sleep(Math.max(0, startedAt + (i * SECONDS * 1000) / (RELOADS + 1) - Date.now()));
      const t0 = Date.now();
      const mark = emperor.lines.length;
      utimesSync(file, t0 / 1000, t0 / 1000);
      const running = await emperor.waitLine(
        (l) => mine(l) && l.event === 'running' && l.generation === gen + 1,
        `${app} generation ${gen + 1} running`,
        mark,
        30_000,
      );
      gen += 1;
      readyMs.push(running.time - t0);
    }
    const r = await run.done;
    // The last old generation drains before its exits are read.
    await emperor
      .waitLines(
        (l) => mine(l) && l.event === 'exit' && l.generation === gen - 1,
        3,
        'old generation exits',
        from,
        20_000,
      )
      .catch(() => undefined);
    const lines = emperor.lines.slice(from).filter(mine);
    const oldExits = lines.filter((l) => l.event === 'exit' && l.generation < gen);
    const bad = oldExits.filter((l) => l.code !== 0 || l.signal);
    const current = new Set(
      lines.filter((l) => l.event === 'spawn' && l.generation === gen).map((l) => l.pid),
    );
    const after = new Set();
    let probeFailures = 0;
    for (let i = 0; i < 30; i++) {
      const p = await probe(port);
      if (!p.ok) probeFailures += 1;
      else after.add(p.body.master ?? p.body.pid); // gunicorn answers from a worker: its master is the instance
    }
    const strangers = [...after].filter((p) => !current.has(p));
    notes.push(
      `${app}: ${oldExits.length} old instances exited (non-zero or by signal: ${bad.length}); ` +
        `touch -> next generation running: ${readyMs.join(', ')} ms; 30 probes after the run: ` +
        `${probeFailures} failed, answered by ${after.size} instances, ${strangers.length} of them not of the newest generation`,
    );
    for (const l of [...lines.filter((x) => x.level >= 40), ...bad])
      notes.push(`${app}: emperor ${JSON.stringify(l)}`);
    return { ...r, reloads: readyMs.length };
  };
  const steadyRun = async () => ({ ...(await load(port).done), reloads: 0 });
  const controlRun = async () => {
    const run = load(port);
    const startedAt = await run.countedFrom;
    for (let i = 1; i <= RELOADS; i++) {
      await sleep(Math.max(0, startedAt + (i * SECONDS * 1000) / (RELOADS + 1) - Date.now()));
      await Promise.all([directStart(), directStart(), directStart()]);
    }
    return { ...(await run.done), reloads: 0 };
  };
  const kinds = [
    ['steady', steadyRun],
    [`${RELOADS} reloads`, reloadRun],
    // BENCH_QUICK=1 (npm run bench): no control run.
    ...(isGunicorn(app) || process.env.BENCH_QUICK === '1'
      ? []
      : [[`${RELOADS}x3 direct starts`, controlRun]]),
  ];
  return { app, name, kinds, rounds: [] };
}

for (let round = 1; round <= ROUNDS; round++) {
  for (let a = 0; a < subjects.length; a++) {
    const { app, kinds, rounds } = subjects[(a + round - 1) % subjects.length];
    const got = {};
    for (let k = 0; k < kinds.length; k++) {
      const [label, run] = kinds[(k + round - 1) % kinds.length];
      got[label] = await run();
    }
    for (const [label] of kinds) rows.push(row(app, round, label, got[label]));
    rounds.push({ steady: got.steady, reloaded: got[`${RELOADS} reloads`], control: got[kinds[2]?.[0]] });
  }
}
rows.sort((x, y) => apps.indexOf(x[0]) - apps.indexOf(y[0]) || x[1] - y[1]);

for (const { app, name, rounds } of subjects) {
  // The app's own account of each drain (Node apps print one line at SIGTERM and one on exit).
  const logPath = join(emperor.logDir, `${name}.log`);
  if (!isGunicorn(app) && existsSync(logPath)) {
    const events = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const sum = (ev, k) => events.filter((e) => e.event === ev).reduce((a, e) => a + e[k], 0);
    notes.push(
      `${app}: at SIGTERM the old instances had ${sum('sigterm', 'open')} open connections, ` +
        `${sum('sigterm', 'idle')} of them with no request in progress; while draining they sent ` +
        `${sum('drained', 'closeAnswers')} answers with Connection: close`,
    );
  }
  const failed = rounds.reduce((a, p) => a + p.reloaded.errors + p.reloaded.non2xx, 0);
  const otherFailed = rounds.reduce(
    (a, p) => a + p.steady.errors + p.steady.non2xx + (p.control?.errors ?? 0),
    0,
  );
  const ratios = rounds.map((p) => p.reloaded.p99 / p.steady.p99);
  const ofMedians = median(rounds.map((p) => p.reloaded.p99)) / median(rounds.map((p) => p.steady.p99));
  const control = rounds[0].control
    ? `; control (direct starts) p99 / steady: ${rounds.map((p) => `${fmt(p.control.p99 / p.steady.p99, 2)}x`).join(', ')}`
    : '';
  const suffix = app === 'node' ? '' : `-${app}`;
  result(`reload-failed${suffix}`, 'emperor', failed, {
    requests: rounds.reduce((a, p) => a + p.reloaded.requests, 0),
  });
  result(`reload-p99-ratio${suffix}`, 'emperor', ofMedians, {
    steady: median(rounds.map((p) => p.steady.p99)),
    reloaded: median(rounds.map((p) => p.reloaded.p99)),
  });
  verdicts.push(
    `${app}: goal 0 failed under reload: ${verdict(failed === 0)} (${failed}; other runs: ${otherFailed}); ` +
      `p99 within 2x of steady: ${verdict(ratios.every((x) => x <= 2))} (per round ${ratios.map((x) => `${fmt(x, 2)}x`).join(', ')}; ` +
      `median over rounds ${fmt(ofMedians, 2)}x${control})`,
  );
}

await emperor.stop();

function row(app, round, run, r) {
  return [
    app,
    round,
    run,
    r.requests,
    fmt(r.rps, 0),
    r.connect,
    r.read,
    r.write,
    r.timeout,
    r.non2xx,
    fmt(r.p50, 2),
    fmt(r.p99, 2),
    fmt(r.max, 1),
  ];
}

printTable(
  `Rolling reload under load: ${RATE > 0 ? `open loop at ${RATE} req/s (bench/rate-load.mjs, ${RATE_WARMUP_S} s warm-up not counted), ${LOAD.connections} connections at most, ${SECONDS} s` : `wrk -t${LOAD.threads} -c${LOAD.connections} -d${SECONDS}s`} on one owned socket, processes = 3, ${RELOADS} touches during each reload run (latency in ms)`,
  [
    'app',
    'round',
    'run',
    'requests',
    'req/s',
    'connect err',
    'read err',
    'write err',
    'timeouts',
    'non-2xx',
    'p50',
    'p99',
    'max',
  ],
  rows,
);
for (const n of notes) console.log(`- ${n}`);
for (const v of verdicts) console.log(v);
