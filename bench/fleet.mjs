// The fleet (issue #16, docs/fleet.md) against a real etcd (Debian's etcd-server) on loopback:
//
// (a) put -> running everywhere: 3 emperors watch one prefix (distinct node names, state and
//     control); each of PUTS puts gives the one vassal a new text, and the time is taken from the
//     put's request (etcd's JSON gateway over HTTP, as `etcdctl put` but without starting a Go
//     binary, ~20-40 ms here) to the `running` line of the new generation on the last of the three
//     emperors (each line timed on arrival). Puts go one after the other.
// (b) 1000 vassals (/bin/sleep) as keys under a prefix vs the same 1000 as files in a directory:
//     `emperor run` spawned -> every vassal `running`, and the emperor's RSS after SETTLE_S of idle.
//     The two sides alternate (RUNS each), so load on a shared machine falls on both alike.
//
//   node bench/fleet.mjs [latency] [sync]     (both by default; PUTS=50 N=1000 RUNS=2 SETTLE_S=10)
// NODE_EXTRA_CA_CERTS is unset for every process (cleanEnv, startEmperor).
import { loadavg } from 'node:os';
import {
  deadline,
  fmt,
  median,
  nowMs,
  percentile,
  printTable,
  rssKb,
  sleep,
  startEmperor,
  startEtcdMember,
  tempDir,
  vassalIni,
} from './lib.mjs';

const parts = process.argv.slice(2);
const LATENCY = parts.length === 0 || parts.includes('latency');
const SYNC = parts.length === 0 || parts.includes('sync');
const PUTS = Number(process.env.PUTS ?? 50);
const N = Number(process.env.N ?? 1000);
const RUNS = Number(process.env.RUNS ?? 2);
const SETTLE_S = Number(process.env.SETTLE_S ?? 10);
deadline(300_000, 'fleet');

// --- one etcd member -----------------------------------------------------------------------------
const { port, client } = await startEtcdMember();
const url = (prefix) => `etcd://127.0.0.1:${port}${prefix}`;

/** An emperor watching `prefix` (and its own empty directory), with its own state and control. */
function fleetEmperor(prefix, node) {
  const state = tempDir('emp-bench-state-');
  return startEmperor({ args: ['--vassals', url(prefix), '--state-dir', state, '--node-name', node] });
}

const load0 = loadavg()[0];
console.log(`fleet bench: etcd on 127.0.0.1:${port}; load average at start ${fmt(load0)}`);

// --- (a) put -> new generation running on all 3 -------------------------------------------------
if (LATENCY) {
  const text = (i) => vassalIni('/bin/sleep 1000', `env = V=${i}\nstop-timeout = 5\n`);
  await client.put('/lat/vassals/app', text(0));
  const emperors = await Promise.all(['n1', 'n2', 'n3'].map((n) => fleetEmperor('/lat', n)));
  const runningGen = (gen) => (l) => l.event === 'running' && l.vassal === 'app' && l.generation === gen;
  await Promise.all(emperors.map((e) => e.waitLine(runningGen(1), 'app generation 1')));
  const all = [];
  const each = [];
  for (let i = 1; i <= PUTS; i++) {
    const gen = i + 1;
    const from = emperors.map((e) => e.lines.length);
    const t0 = nowMs();
    await client.put('/lat/vassals/app', text(i));
    const lines = await Promise.all(
      emperors.map((e, k) => e.waitLine(runningGen(gen), `app generation ${gen}`, from[k])),
    );
    const ats = lines.map((l) => l._at - t0);
    all.push(Math.max(...ats));
    each.push(...ats);
  }
  printTable(
    `(a) put -> new generation running: ${PUTS} puts, 3 emperors, 1 etcd member (load average ${fmt(loadavg()[0])})`,
    ['ms', 'p50', 'p90', 'p99', 'min', 'max'],
    [
      [
        'on all 3 emperors (the last one)',
        ...[50, 90, 99].map((p) => fmt(percentile(all, p))),
        fmt(Math.min(...all)),
        fmt(Math.max(...all)),
      ],
      [
        'on each emperor',
        ...[50, 90, 99].map((p) => fmt(percentile(each, p))),
        fmt(Math.min(...each)),
        fmt(Math.max(...each)),
      ],
    ],
  );
  console.log(`goal p99 < 200 ms on all 3: ${percentile(all, 99) < 200 ? 'met' : 'NOT met'}`);
  await Promise.all(emperors.map((e) => e.stop()));
}

// --- (b) 1000 vassals from etcd vs from a directory ----------------------------------------------
if (SYNC) {
  const body = (i) => vassalIni('/bin/sleep 1000', `env = I=${i}\nstop-timeout = 5\n`);
  // Put in batches: the gateway takes one key per request.
  for (let i = 0; i < N; i += 50)
    await Promise.all(
      Array.from({ length: Math.min(50, N - i) }, (_, k) =>
        client.put(`/sync/vassals/app${i + k}`, body(i + k)),
      ),
    );
  const files = Object.fromEntries(Array.from({ length: N }, (_, i) => [`app${i}.ini`, body(i)]));
  const firstRunning = (l) => l.event === 'running' && l.generation === 1;

  async function side(kind) {
    const emp = kind === 'etcd' ? await fleetEmperor('/sync', 'n1') : await startEmperor({ files });
    const lines = await emp.waitLines(firstRunning, N, `${N} vassals running (${kind})`, 0, 180_000);
    const syncMs = Math.max(...lines.map((l) => l._at)) - emp.startedAt;
    const peakAtSync = rssKb(emp.pid, 'VmHWM');
    await sleep(SETTLE_S * 1000);
    const rss = rssKb(emp.pid);
    await emp.stop();
    return { syncMs, rss, peak: peakAtSync };
  }
  const results = { dir: [], etcd: [] };
  for (let r = 0; r < RUNS; r++)
    for (const kind of r % 2 === 0 ? ['dir', 'etcd'] : ['etcd', 'dir']) {
      results[kind].push(await side(kind));
      console.log(
        `  run ${r + 1} ${kind}: ${JSON.stringify(results[kind].at(-1))} (load ${fmt(loadavg()[0])})`,
      );
    }
  const mb = (kb) => fmt(kb / 1024);
  printTable(
    `(b) ${N} vassals: spawn -> all running, and RSS after ${SETTLE_S} s idle (median of ${RUNS}, interleaved; load average ${fmt(loadavg()[0])})`,
    ['source', 'spawn -> all running, ms', 'RSS idle, MiB', 'peak RSS (VmHWM), MiB'],
    ['dir', 'etcd'].map((k) => [
      k === 'dir' ? `${N} files in a directory` : `${N} keys in etcd`,
      fmt(median(results[k].map((x) => x.syncMs)), 0),
      mb(median(results[k].map((x) => x.rss))),
      mb(median(results[k].map((x) => x.peak))),
    ]),
  );
}
process.exit(0);
