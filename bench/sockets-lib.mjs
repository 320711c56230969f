// Shared pieces of the owned-socket benchmarks (issue #5): the keep-alive bench app, free ports,
// one-request-per-connection probes, wrk with a Lua reporter, and direct (emperor-less) starts of
// the app to measure its own start time in the same run.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, cleanEnv, nowMs, shell, tempDir, track, untrack } from './lib.mjs';

export const NODE = process.execPath;
export const APP = join(ROOT, 'bench', 'apps', 'keepalive-app.mjs');
export const WSGI_DIR = join(ROOT, 'test', 'fixtures');
export const GUNICORN = '/usr/bin/gunicorn';

/** Prints what the figures depend on: the machine, its load, and the versions. */
export function printMachine() {
  console.log(`date -u: ${shell('date -u')}`);
  console.log(
    `nproc: ${shell('nproc')}; memory: ${shell('free -m | awk \'/Mem:/{print $2" MiB"}\'')}; kernel: ${shell('uname -r')}; node: ${process.version}`,
  );
  console.log(`wrk: ${shell('wrk -v 2>&1 | head -1')}; gunicorn: ${shell('gunicorn --version 2>&1')}`);
  console.log(`loadavg: ${shell('cat /proc/loadavg')}`);
}

export function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/**
 * One GET on a new connection (agent: false). Resolves with { ok, t0, t1, body?, error? }; never
 * rejects, so a failed probe is counted, not thrown.
 */
export function probe(port, timeoutMs = 5000) {
  return new Promise((done) => {
    const t0 = nowMs();
    let settled = false;
    const finish = (r) => {
      if (settled) return;
      settled = true;
      done({ t0, t1: nowMs(), ...r });
    };
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return finish({ ok: false, error: `status ${res.statusCode}` });
        try {
          finish({ ok: true, body: JSON.parse(text) });
        } catch (err) {
          finish({ ok: false, error: `bad body: ${err.message}` });
        }
      });
      res.on('error', (err) => finish({ ok: false, error: err.code ?? err.message }));
    });
    req.on('error', (err) => finish({ ok: false, error: err.code ?? err.message }));
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end();
  });
}

/**
 * Starts the bench app directly (no emperor) on its own port and resolves when its listen callback
 * has run: { spawnAt, listenedAt, startMs = listenedAt - spawnAt, ... }. The child is stopped after.
 */
export async function directStart(extraEnv = {}) {
  const port = await freePort();
  const spawnAt = nowMs();
  // BENCH_DIRECT_PREFIX (such as `nice -n 10` or `chrt -i 0`) wraps the app's command: what a
  // scheduling class for booting processes would buy the instances serving.
  const prefix = (process.env.BENCH_DIRECT_PREFIX ?? '').split(' ').filter(Boolean);
  const [cmd, ...args] = [...prefix, NODE, APP];
  const child = spawn(cmd, args, {
    env: cleanEnv({ PORT: String(port), ...extraEnv }),
    stdio: ['ignore', 'pipe', 'inherit'],
    // BENCH_DIRECT_DETACHED=1: a session of its own (and so, with the kernel's sched_autogroup, a
    // CPU group of its own), which the emperor once gave each instance.
    detached: process.env.BENCH_DIRECT_DETACHED === '1',
  });
  track(child.pid);
  const { listenedAt, startedAt } = await new Promise((done, fail) => {
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(JSON.parse(buf.slice(0, nl)));
    });
    child.once('exit', (code) => fail(new Error(`the app exited (${code}) before listening`)));
  });
  const answered = await probe(port);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  untrack(child.pid);
  return {
    spawnAt,
    listenedAt,
    startMs: listenedAt - spawnAt,
    execMs: startedAt - spawnAt, // spawn -> Node's timeOrigin
    bootMs: listenedAt - startedAt, // Node's timeOrigin -> listen callback
    firstAnswerMs: answered.t1 - spawnAt,
  };
}

let waitingSocket;
/**
 * The on-demand case without an emperor: a client connects to a socket this process bound (with
 * the emperor's addon, which never accepts), then the app is spawned directly with that socket at
 * fd 3 and answers the waiting client. Resolves with { answerMs: connect -> answer, listenMs }.
 */
export async function directWaiting() {
  if (!waitingSocket) {
    const { bindTcp } = await import(join(ROOT, 'packages', 'native', 'dist', 'src', 'index.js'));
    waitingSocket = bindTcp({ host: '127.0.0.1', port: 0, backlog: 128 });
  }
  const answer = probe(waitingSocket.port, 10_000);
  const child = spawn(NODE, [APP], {
    env: cleanEnv({ BENCH_FD3: '1' }),
    stdio: ['ignore', 'ignore', 'inherit', waitingSocket.fd],
  });
  track(child.pid);
  const r = await answer;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
  untrack(child.pid);
  if (!r.ok) throw new Error(`direct start with a waiting client failed: ${r.error}`);
  return { answerMs: r.t1 - r.t0, listenMs: r.body.listenedAt - r.t0 };
}

// --- wrk -----------------------------------------------------------------------------------------
// The Lua side counts answers per `x-pid` header and non-2xx statuses in each thread, and done()
// prints one JSON line with wrk's own totals, error counters and latency percentiles (µs).
const WRK_LUA = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) pids = {}; non2xx = 0 end
function response(status, headers, body)
  local p = headers["x-pid"] or "-"
  pids[p] = (pids[p] or 0) + 1
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local per, bad = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("pids")) do per[k] = (per[k] or 0) + v end
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"non2xx":%d,',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, bad))
  io.write(string.format('"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f,"pids":{',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
  local first = true
  for k, v in pairs(per) do
    if not first then io.write(",") end
    first = false
    io.write(string.format('"%s":%d', k, v))
  end
  io.write("}}\\n")
end
`;
let luaPath;

/**
 * Runs wrk against 127.0.0.1:port and resolves with its figures (latencies in ms).
 * `opts`: threads, connections, seconds, timeout (s), header (extra request header).
 */
export async function runWrk(
  port,
  { threads = 2, connections = 32, seconds = 10, timeout = 2, header } = {},
) {
  if (!luaPath) {
    luaPath = join(tempDir('emp-bench-wrk-'), 'report.lua');
    writeFileSync(luaPath, WRK_LUA);
  }
  const args = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${seconds}s`,
    `--timeout`,
    `${timeout}s`,
    '-s',
    luaPath,
  ];
  if (header) args.push('-H', header);
  args.push(`http://127.0.0.1:${port}/`);
  const child = spawn('wrk', args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child.pid);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => (out += c));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => (err += c));
  const code = await new Promise((r) => child.once('exit', r));
  untrack(child.pid);
  return report(out, 'WRKJSON ', () => `wrk exited ${code} without a report: ${out}${err}`);
}

/** The `PREFIX{json}` line of a load generator's output, latencies in ms and totals added. */
function report(out, prefix, missing) {
  const line = out.split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(missing());
  const r = JSON.parse(line.slice(prefix.length));
  for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'mean']) r[k] /= 1000;
  r.seconds = r.durationUs / 1e6;
  r.rps = r.requests / r.seconds;
  r.errors = r.connect + r.read + r.write + r.timeout;
  r.text = out;
  return r;
}

/** Seconds of load before runRate counts, so that the client's own start-up is not measured. */
export const RATE_WARMUP_S = 1;

/**
 * The same report as runWrk, from bench/rate-load.mjs: `rate` requests per second whatever the
 * answers take (an open loop), over `connections` keep-alive connections at most.
 */
export async function runRate(
  port,
  { rate, connections = 32, seconds = 10, timeout = 2, warmup = RATE_WARMUP_S, trace, onStart },
) {
  const script = join(ROOT, 'bench', 'rate-load.mjs');
  const args = [script, port, rate, seconds, connections, timeout, warmup, ...(trace ? [trace] : [])];
  const child = spawn(process.execPath, args.map(String), {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(child.pid);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => {
    out += c;
    // `onStart(ms)`: the wall clock when the counted part starts, once rate-load knows it.
    const m = /^RATESTART (\d+)$/m.exec(out);
    if (m && onStart) {
      onStart(Number(m[1]));
      onStart = undefined;
    }
  });
  const code = await new Promise((r) => child.once('exit', r));
  untrack(child.pid);
  return report(out, 'RATEJSON ', () => `rate-load exited ${code} without a report: ${out}`);
}

const GUNICORN_READY_HOOKS = join(ROOT, 'contrib', 'gunicorn', 'ready.py');

/**
 * The vassal file of the reload benches: `processes = 3` on an owned socket at `port`. Apps:
 * `node` (bench app, SDK drain, ready = fd), `nodeMS` (the SDK with spreadMs = MS), `own`,
 * `naive`, `gunicorn` (ready = notify, or GUNICORN_READY; GUNICORN_ARGS added) and
 * `gunicorn-ready` (with contrib/gunicorn/ready.py). A `+rn` suffix adds `retire-nice = 10`.
 */
export function reloadVassal(appRn, port) {
  const app = appRn.replace(/\+rn$/, '');
  const rn = appRn.endsWith('+rn') ? 'retire-nice = 10\n' : '';
  const common = `socket = 127.0.0.1:${port}\nprocesses = 3\nstop-timeout = 15\n${rn}`;
  if (app.startsWith('gunicorn')) {
    // gunicorn-ready: READY=1 once the workers have the app (contrib/gunicorn/ready.py).
    const hooks = app === 'gunicorn-ready' ? `-c ${GUNICORN_READY_HOOKS} ` : '';
    return `[vassal]\nexec = ${GUNICORN} ${hooks}--workers 2 ${process.env.GUNICORN_ARGS ?? ''} --chdir ${WSGI_DIR} wsgi_app:app\n${common}ready = ${process.env.GUNICORN_READY ?? 'notify'}\n`;
  }
  // nodeMS (node0, node3000): the SDK with spreadMs = MS, the window over which it sends
  // keep-alive clients away (default 1000).
  const spreadMs = /^node(\d+)$/.exec(app)?.[1];
  const shutdown = spreadMs === undefined ? { node: 'sdk', own: 'own', naive: 'naive' }[app] : 'sdk';
  if (!shutdown) throw new Error(`unknown app ${app}: node, nodeMS, own, naive or gunicorn`);
  const spread = spreadMs === undefined ? '' : `env = SPREAD_MS=${spreadMs}\n`;
  return `[vassal]\nexec = ${NODE} ${APP}\n${common}ready = fd\nenv = SHUTDOWN=${shutdown}\n${spread}`;
}
