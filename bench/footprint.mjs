// The emperor's memory and idle CPU with 0, 100 and 1000 sleeping vassals (/bin/sleep).
// RSS is VmRSS of /proc/PID/status once all vassals run and the emperor has been idle for a few
// seconds (VmHWM, the peak, is shown too); idle CPU is the utime+stime delta of /proc/PID/stat
// over IDLE_S seconds, as a share of one core. The floor is a bare Node process doing nothing.
// Usage: node bench/footprint.mjs [--watched] [N...]   (default 0 100 1000; IDLE_S=10)
//
// --watched: after the idle figures, the same emperor is watched as the dashboard watches it: a
// `/v1/events` stream is open (history sampling every 3 s, a sample event each time) and RSS and
// CPU are measured again over the same window; then, where Debian's chromium is installed, the
// dashboard page is loaded over `--dashboard` and its first paint timed (the `emperor-table-filled`
// mark, set when every vassal's row is in the table; median of 3 loads, the first one cold).
// Then `emperor top` runs in a tmux pane (140x50) against the same emperor: its own RSS after
// SETTLE_S and its CPU over IDLE_S. TOP_BIN=path/to/emperor.js measures another build's top
// (before/after a change) in the same run.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  BIN,
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

const WATCHED = process.argv.includes('--watched');
const CHROMIUM = '/usr/bin/chromium';
const sizes = process.argv
  .slice(2)
  .filter((a) => a !== '--watched')
  .map(Number);
if (sizes.length === 0) sizes.push(0, 100, 1000);
const IDLE_S = Number(process.env.IDLE_S ?? 10);
// Node settles a few seconds after start-up (lazy compilation, V8's memory reducer GC): measure after.
const SETTLE_S = Number(process.env.SETTLE_S ?? 15);
deadline(WATCHED ? 300_000 : 115_000, 'footprint');

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

/** Opens `/v1/events` on the control socket and reads it until `close()` (a dashboard watching). */
function watch(socketPath) {
  let bytes = 0;
  const req = request({ socketPath, path: '/v1/events', agent: false }, (res) => {
    res.on('data', (c) => (bytes += c.length));
  });
  req.on('error', () => {});
  req.end();
  return { close: () => req.destroy(), bytes: () => bytes };
}

/** The dashboard's first paint in ms (median of 3 page loads, the first in a fresh browser). */
async function firstPaint(port) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const times = [];
    for (let i = 0; i < 3; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`http://127.0.0.1:${port}/dashboard/`);
      await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
      times.push(await page.evaluate(`performance.getEntriesByName('emperor-table-filled')[0].startTime`));
      await page.close();
    }
    return { median: [...times].sort((a, b) => a - b)[1], times };
  } finally {
    await browser.close();
  }
}

/** `emperor top` (from `bin`) in a detached tmux pane watching `control`: its RSS and CPU. */
async function topFootprint(bin, control) {
  const dir = mkdtempSync('/tmp/emp-bench-tmux-');
  // The tmux server, started by new-session, passes this environment to the pane.
  const env = cleanEnv({ EMPEROR_CONTROL: control });
  const tmux = (...args) =>
    execFileSync('tmux', ['-S', join(dir, 'tmux.sock'), ...args], { encoding: 'utf8', env });
  tmux('new-session', '-d', '-x', '140', '-y', '50', `exec ${process.execPath} ${bin} top`);
  try {
    const pid = Number(tmux('list-panes', '-F', '#{pane_pid}').trim());
    await sleep(SETTLE_S * 1000);
    const cpu = await idleCpu(pid);
    return { rss: rssKb(pid), hwm: rssKb(pid, 'VmHWM'), cpu };
  } finally {
    tmux('kill-server');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function emperorWith(n, floorPid) {
  const files = {};
  for (let i = 0; i < n; i++) files[`s${i}.ini`] = vassalIni('/bin/sleep 1000');
  const port = WATCHED ? 20000 + Math.floor(Math.random() * 20000) : undefined;
  const emperor = await startEmperor({ files, args: port ? ['--dashboard', `127.0.0.1:${port}`] : [] });
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
  let watched;
  if (WATCHED) {
    const stream = watch(join(emperor.dir, 'ctl'));
    await sleep(5_000); // the first samples and the stream's first status are behind us
    const wcpu = await idleCpu(emperor.pid);
    watched = { rss: rssKb(emperor.pid), hwm: rssKb(emperor.pid, 'VmHWM'), cpu: wcpu, bytes: stream.bytes() };
    stream.close();
    if (existsSync(CHROMIUM) && n > 0) watched.paint = await firstPaint(port);
    if (n > 0) {
      watched.top = await topFootprint(BIN, join(emperor.dir, 'ctl'));
      if (process.env.TOP_BIN)
        watched.topOther = await topFootprint(process.env.TOP_BIN, join(emperor.dir, 'ctl'));
    }
  }
  await emperor.stop();
  return { rss, hwm, cpu, busy, floor, watched };
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
  if (r.watched) {
    const w = r.watched;
    result(`rss-watched-${n}`, 'emperor', w.rss / 1024);
    result(`idle-cpu-watched-${n}`, 'emperor', w.cpu.pct);
    if (w.paint) result(`dashboard-first-paint-${n}`, 'emperor', w.paint.median, { ms: w.paint.times });
    rows.push([
      `  same, /v1/events open${w.paint ? `; first paint ${w.paint.times.map((t) => fmt(t, 0)).join('/')} ms` : ''}`,
      '',
      fmt(w.rss / 1024),
      fmt(w.hwm / 1024),
      `${fmt(w.cpu.pct, 2)} (${w.cpu.ticks} ticks)`,
    ]);
    for (const [label, top] of [
      ['`emperor top`', w.top],
      [`\`emperor top\` of ${process.env.TOP_BIN}`, w.topOther],
    ]) {
      if (!top) continue;
      result(`top-rss-${n}${top === w.topOther ? '-other' : ''}`, 'emperor top', top.rss / 1024);
      rows.push([
        `  ${label} watching it`,
        '',
        fmt(top.rss / 1024),
        fmt(top.hwm / 1024),
        `${fmt(top.cpu.pct, 2)} (${top.cpu.ticks} ticks)`,
      ]);
    }
  }
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
const paint = results.get(1000)?.watched?.paint;
if (paint) goals.push(`dashboard first paint < 1 s at 1000: ${verdict(paint.median < 1000)}`);
console.log(`goals: ${goals.join('; ')}`);
