// The emperor's memory and idle CPU with 0, 100 and 1000 sleeping vassals (/bin/sleep).
// RSS is VmRSS of /proc/PID/status once all vassals run and the emperor has been idle for a few
// seconds (VmHWM, the peak, is shown too); idle CPU is the utime+stime delta of /proc/PID/stat
// over IDLE_S seconds, as a share of one core. The floor is a bare Node process doing nothing.
// Usage: node bench/footprint.mjs [N...]   (default 0 100 1000; IDLE_S=10)
import { spawn } from 'node:child_process';
import {
  CLK_TCK,
  cleanEnv,
  cpuTicks,
  deadline,
  fmt,
  nowMs,
  printTable,
  result,
  rssKb,
  sleep,
  startEmperor,
  track,
  untrack,
  verdict,
  vassalIni,
} from './lib.mjs';

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(0, 100, 1000);
const IDLE_S = Number(process.env.IDLE_S ?? 10);
// Node settles a few seconds after start-up (lazy compilation, V8's memory reducer GC): measure after.
const SETTLE_S = Number(process.env.SETTLE_S ?? 15);
deadline(115_000, 'footprint');

function idleCpu(pid) {
  const t0 = nowMs();
  const c0 = cpuTicks(pid);
  return sleep(IDLE_S * 1000).then(() => {
    const ticks = cpuTicks(pid) - c0;
    const secs = (nowMs() - t0) / 1000;
    return { pct: (100 * ticks) / CLK_TCK / secs, ticks };
  });
}

/** The floor: a bare Node process, started first and measured in the same window as the first emperor. */
function startFloor() {
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], {
    env: cleanEnv(),
    stdio: 'ignore',
  });
  track(child.pid);
  return child;
}

async function emperorWith(n, floorPid) {
  const files = {};
  for (let i = 0; i < n; i++) files[`s${i}.ini`] = vassalIni('/bin/sleep 1000');
  const emperor = await startEmperor({ files });
  if (n > 0) await emperor.waitLines((l) => l.event === 'running', n, `${n} running`, 0, 60_000);
  const busy = rssKb(emperor.pid);
  await sleep(SETTLE_S * 1000);
  const [cpu, floorCpu] = await Promise.all([
    idleCpu(emperor.pid),
    floorPid === undefined ? undefined : idleCpu(floorPid),
  ]);
  const rss = rssKb(emperor.pid);
  const hwm = rssKb(emperor.pid, 'VmHWM');
  const floor =
    floorPid === undefined
      ? undefined
      : { rss: rssKb(floorPid), hwm: rssKb(floorPid, 'VmHWM'), cpu: floorCpu };
  await emperor.stop();
  return { rss, hwm, cpu, busy, floor };
}

const rows = [];
const floorChild = startFloor();
const results = new Map();
for (const [i, n] of sizes.entries()) {
  const r = await emperorWith(n, i === 0 ? floorChild.pid : undefined);
  results.set(n, r);
  if (r.floor) {
    floorChild.kill('SIGKILL');
    untrack(floorChild.pid);
    rows.push([
      'bare `node -e setInterval`',
      '',
      fmt(r.floor.rss / 1024),
      fmt(r.floor.hwm / 1024),
      `${fmt(r.floor.cpu.pct, 2)} (${r.floor.cpu.ticks} ticks)`,
    ]);
  }
  result(`rss-${n}`, 'emperor', r.rss / 1024, { hwm: r.hwm / 1024 });
  result(`idle-cpu-${n}`, 'emperor', r.cpu.pct);
  rows.push([
    `emperor, ${n} vassals`,
    fmt(r.busy / 1024),
    fmt(r.rss / 1024),
    fmt(r.hwm / 1024),
    `${fmt(r.cpu.pct, 2)} (${r.cpu.ticks} ticks)`,
  ]);
}
printTable(
  `Footprint: RSS in MiB; "steady" = after ${SETTLE_S} s settling + ${IDLE_S} s idle, over which idle CPU (% of one core; 1 tick = ${1000 / CLK_TCK} ms) is measured`,
  ['process', 'VmRSS when all run', 'VmRSS, steady', 'VmHWM (peak)', 'idle CPU %'],
  rows,
);
const goals = [];
if (results.has(100)) goals.push(`RSS <= 60 MB at 100: ${verdict(results.get(100).rss / 1024 <= 60)}`);
if (results.has(1000)) goals.push(`RSS <= 80 MB at 1000: ${verdict(results.get(1000).rss / 1024 <= 80)}`);
goals.push(`idle CPU < 0.5 %: ${verdict([...results.values()].every((r) => r.cpu.pct < 0.5))}`);
console.log(`goals: ${goals.join('; ')}`);
