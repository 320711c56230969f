// Shared pieces of the benchmarks: a real `emperor run` in a temp dir with its JSON log timed on
// arrival, /proc readers, statistics and table printing. Every process started here is recorded
// and killed by pid when the bench ends, however it ends.
import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

export const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
export const BIN = join(ROOT, 'packages', 'cli', 'bin', 'emperor.js');
export const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64/arm64; /proc/PID/stat counts in these

/** The environment of every process a bench starts: NODE_EXTRA_CA_CERTS costs ~35 ms per Node start here. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Milliseconds with sub-ms resolution, comparable to Date.now() (the epoch). */
export const nowMs = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * `promise`'s value, or undefined after `ms`; the timer is cleared either way, so that a bench
 * that is done exits at once instead of waiting it out.
 */
export function within(promise, ms) {
  let timer;
  const late = new Promise((r) => (timer = setTimeout(r, ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// --- cleanup of everything started here ----------------------------------------------------------
const started = new Set(); // pids
const dirs = new Set();
export function track(pid) {
  if (pid) started.add(pid);
}
export function untrack(pid) {
  started.delete(pid);
}
function killAllStarted() {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  started.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.on('exit', killAllStarted);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllStarted();
    process.exit(130);
  });
}

export function tempDir(prefix = 'emp-bench-') {
  const dir = mkdtempSync(join('/tmp', prefix));
  dirs.add(dir);
  return dir;
}
export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Exits the bench if it runs longer than `ms` (each bench must stay under 2 minutes). */
export function deadline(ms, what) {
  const t = setTimeout(() => {
    console.error(`${what}: over the ${ms / 1000} s budget, giving up`);
    process.exit(2);
  }, ms);
  t.unref();
}

// --- etcd -----------------------------------------------------------------------------------------
/** A TCP port free on 127.0.0.1 now (closed again: whoever binds it next gets it). */
export function freePort() {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/**
 * One etcd member (Debian's etcd-server) on loopback ports, its data in a temp dir; killed and
 * removed when the bench ends. Resolves once it answers, with its client port and a client of
 * the emperor's own (`npx tsc -b` first).
 */
export async function startEtcdMember() {
  const dir = tempDir('emp-bench-etcd-');
  const [port, peer] = [await freePort(), await freePort()];
  const etcd = spawn(
    'etcd',
    [
      ...['--data-dir', join(dir, 'data'), '--log-level', 'error'],
      ...['--listen-client-urls', `http://127.0.0.1:${port}`],
      ...['--advertise-client-urls', `http://127.0.0.1:${port}`],
      ...['--listen-peer-urls', `http://127.0.0.1:${peer}`],
      ...['--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
      ...['--initial-cluster', `default=http://127.0.0.1:${peer}`],
    ],
    { stdio: 'ignore', env: cleanEnv() },
  );
  track(etcd.pid);
  const { EtcdClient } = await import(join(ROOT, 'packages/daemon/dist/src/sources/etcd/client.js'));
  const client = new EtcdClient({ endpoints: [{ host: '127.0.0.1', port }] });
  for (let i = 0; ; i++) {
    try {
      await client.range('/');
      return { port, client };
    } catch (err) {
      if (i > 300) throw err;
      await sleep(100);
    }
  }
}

// --- the emperor ---------------------------------------------------------------------------------
export function vassalIni(exec, extra = '') {
  return `[vassal]\nexec = ${exec}\n${extra}`;
}

/**
 * Starts `emperor run` on a fresh temp dir. `files` are written before the start.
 * Each log line gets `_at` (arrival, nowMs()) next to pino's own `time` (Date.now(), ms).
 */
export async function startEmperor({ files = {}, wait = true, args = [] } = {}) {
  const dir = tempDir();
  const vassals = join(dir, 'vassals');
  const logDir = join(dir, 'logs');
  mkdirSync(vassals);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(vassals, name), body);
  const startedAt = nowMs();
  const child = spawn(
    process.execPath,
    // BENCH_EMPEROR_NODE_ARGS: e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the emperor.
    [
      ...(process.env.BENCH_EMPEROR_NODE_ARGS ?? '').split(' ').filter(Boolean),
      BIN,
      'run',
      '--vassals',
      vassals,
      '--log-dir',
      logDir,
      '--control',
      join(dir, 'ctl'),
      // BENCH_EMPEROR_ARGS: e.g. "--containment subreaper" to measure without cgroups.
      ...(process.env.BENCH_EMPEROR_ARGS ?? '').split(' ').filter(Boolean),
      ...args,
    ],
    { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(child.pid);
  const lines = [];
  const waiters = new Set();
  const stderr = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    const at = nowMs();
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      line._at = at;
      lines.push(line);
    }
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => {
    stderr.push(c);
    if (process.env.BENCH_STDERR) process.stderr.write(c);
  });
  const exited = new Promise((done) =>
    child.once('exit', (code, signal) => {
      untrack(child.pid);
      done({ code, signal, at: nowMs() });
      for (const w of [...waiters]) w();
    }),
  );
  let dead = false;
  void exited.then(() => (dead = true));

  /** Resolves with the first line from index `from` on matching `pred`. */
  const waitLine = (pred, what, from = 0, timeout = 30_000) =>
    waitLines(pred, 1, what, from, timeout).then((l) => l[0]);
  /** Resolves when `count` lines from index `from` on match `pred`. */
  const waitLines = (pred, count, what, from = 0, timeout = 30_000) =>
    new Promise((done, fail) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        fail(new Error(`timed out waiting for ${what}; stderr: ${stderr.join('').slice(0, 2000)}`));
      }, timeout);
      let i = from;
      const got = [];
      const check = () => {
        for (; i < lines.length; i++) if (pred(lines[i])) got.push(lines[i]);
        if (got.length >= count) {
          clearTimeout(timer);
          waiters.delete(check);
          done(got);
        } else if (dead) {
          clearTimeout(timer);
          waiters.delete(check);
          fail(new Error(`emperor exited while waiting for ${what}; stderr: ${stderr.join('')}`));
        }
      };
      waiters.add(check);
      check();
    });

  const emperor = {
    child,
    pid: child.pid,
    dir,
    vassals,
    logDir,
    lines,
    startedAt,
    exited,
    waitLine,
    waitLines,
    /** SIGTERM, wait for the exit, remove the temp dir. */
    async stop() {
      if (!dead) child.kill('SIGTERM');
      const r = await within(exited, 15_000);
      if (!r) child.kill('SIGKILL');
      await exited;
      // Vassals die with the emperor (SIGTERM stops them; setpriv --pdeathsig covers SIGKILL).
      removeDir(dir);
      return r;
    },
  };
  if (wait) await waitLine((l) => l.event === 'emperor-ready', 'emperor-ready');
  return emperor;
}

// --- /proc ---------------------------------------------------------------------------------------
export function rssKb(pid, field = 'VmRSS') {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → indexes 11, 12 here.
  return Number(f[11]) + Number(f[12]);
}
export function exeOf(pid) {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}
/** The pids of a process's children (every thread's /proc/PID/task/TID/children). */
export function childrenOf(pid) {
  const pids = [];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return pids;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(' ').map(Number));
    } catch {
      // the thread is gone
    }
  }
  return pids;
}

/**
 * Waits until `n` children of `parent` that are not in `old` have exec'd `exe` (a supervisor's
 * apps up); tracks and returns them. `label` names the supervisor in the error.
 */
export async function childrenRunning(parent, exe, n, label, old = new Set(), timeout = 60_000) {
  const done = new Set();
  const limit = nowMs() + timeout;
  for (;;) {
    for (const p of childrenOf(parent)) if (!old.has(p) && !done.has(p) && exeOf(p) === exe) done.add(p);
    if (done.size >= n) {
      for (const p of done) track(p);
      return [...done];
    }
    if (nowMs() > limit) throw new Error(`${label}: ${done.size} of ${n} running after ${timeout / 1000} s`);
    await sleep(1);
  }
}

/** Resolves with the time (nowMs) at which none of `pids` runs any more; untracks them. */
export async function allGone(pids, label, timeout = 20_000) {
  const limit = nowMs() + timeout;
  while (pids.some(alive)) {
    if (nowMs() > limit) throw new Error(`${label}: processes left behind`);
    await sleep(1);
  }
  for (const p of pids) untrack(p);
  return nowMs();
}

/** After `settleS` seconds of settling: RSS in MiB, and CPU in % of a core over `idleS` seconds. */
export async function idleUsage(pid, settleS, idleS) {
  await sleep(settleS * 1000);
  const c0 = cpuTicks(pid);
  const t0 = nowMs();
  await sleep(idleS * 1000);
  return { rss: rssKb(pid) / 1024, cpu: (100 * (cpuTicks(pid) - c0)) / CLK_TCK / ((nowMs() - t0) / 1000) };
}

/**
 * Where the other supervisors are, for the side-by-side runs: on PATH, or in the cache that
 * `npm run bench -- --fetch` fills (BENCH_CACHE, default ~/.cache/emperor-bench).
 */
export const CACHE = process.env.BENCH_CACHE ?? join(homedir(), '.cache', 'emperor-bench');

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// --- statistics and output -----------------------------------------------------------------------
export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length) - 1; // nearest-rank
  return s[Math.min(s.length - 1, Math.max(0, rank))];
}
export const median = (v) => percentile(v, 50);
export const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

/** A row of latencies: label, p50, p90, p99, min, max. */
export const latencyRow = (label, v) => [
  label,
  fmt(median(v)),
  fmt(percentile(v, 90)),
  fmt(percentile(v, 99)),
  fmt(Math.min(...v)),
  fmt(Math.max(...v)),
];

/** A row of latencies with their count, for small samples: label, n, p50, p90, min, max. */
export const countedRow = (label, v) => [
  label,
  v.length,
  fmt(median(v)),
  fmt(percentile(v, 90)),
  fmt(Math.min(...v)),
  fmt(Math.max(...v)),
];

/** The output of a shell command, trimmed, or `?`: for printing what the machine is. */
export function shell(cmd) {
  try {
    return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

/** Prints a GitHub-flavoured markdown table: the same text goes into docs/benchmarks.md. */
export function printTable(title, header, rows) {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(line(cells[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of cells.slice(1)) console.log(line(r));
  console.log('');
}

/**
 * One figure for the summary table of `npm run bench` (bench/bench.mjs): appended as a JSON line to
 * the file named by BENCH_RESULTS, when set. `id` names the row, `tool` the column (emperor, uwsgi,
 * pm2, supervisord); `value` is a number in the row's unit.
 */
export function result(id, tool, value, extra = {}) {
  if (!process.env.BENCH_RESULTS) return;
  appendFileSync(process.env.BENCH_RESULTS, `${JSON.stringify({ id, tool, value, ...extra })}\n`);
}

export function verdict(ok) {
  return ok ? 'met' : 'NOT met';
}
