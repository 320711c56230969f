// supervisord side by side (skipped when it is not found): the measurements of SPEC §7 it has an
// equivalent for. Found on PATH, as BENCH_SUPERVISORD, or in the bench cache (`npm run bench --
// --fetch` unpacks Debian's `supervisor` package there without installing it). Each run has its
// own config, socket and logs in a temp dir, `nodaemon = true`, and is driven through its XML-RPC
// interface on that unix socket (what `supervisorctl` sends, without Python's start-up).
// Programs: `startsecs = 0`, `autorestart = false`, stopped with SIGTERM.
//   cold     : supervisord started with N /bin/sleep programs -> every child runs /bin/sleep
//   footprint: supervisord's VmRSS and idle CPU with N programs running
//   stop     : `supervisor.stopAllProcesses` -> every pid gone
//   reaction : `stopProcess` + `startProcess` of one program (what `supervisorctl restart` does)
//              -> a new child runs /bin/sleep
//   log      : a program writing BYTES to stdout as fast as it can -> its stdout_logfile
//              (`stdout_logfile_maxbytes = 0`: no rotation, as `log-max-size = 0` for the emperor)
// Rolling reload and socket activation: supervisord has neither. Usage: node bench/supervisord.mjs
// [N=100] (env: SETTLE_S=5 IDLE_S=5 TOUCHES=15 LOG_BYTES=256 MiB)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  CACHE,
  CLK_TCK,
  ROOT,
  allGone,
  childrenRunning,
  cleanEnv,
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
  untrack,
  within,
} from './lib.mjs';

const N = Number(process.argv[2] ?? 100);
const SETTLE_S = Number(process.env.SETTLE_S ?? 5);
const IDLE_S = Number(process.env.IDLE_S ?? 5);
const TOUCHES = Number(process.env.TOUCHES ?? 15);
const LOG_BYTES = Number(process.env.LOG_BYTES ?? 256 * 1024 * 1024);
const MiB = 1024 * 1024;

/** The command that runs supervisord, and its environment, or undefined. */
function findSupervisord() {
  const cached = join(CACHE, 'supervisor', 'usr', 'bin', 'supervisord');
  let onPath;
  try {
    onPath = execFileSync('sh', ['-c', 'command -v supervisord'], { encoding: 'utf8' }).trim();
  } catch {
    // not on PATH
  }
  const bin = process.env.BENCH_SUPERVISORD ?? onPath;
  if (bin) return { argv: [bin], env: cleanEnv() };
  if (!existsSync(cached)) return undefined;
  const lib = join(CACHE, 'supervisor', 'usr', 'lib', 'python3', 'dist-packages');
  return { argv: ['python3', cached], env: cleanEnv({ PYTHONPATH: lib }) };
}

const sv = findSupervisord();
if (!sv) {
  console.log('supervisord not found (on PATH, BENCH_SUPERVISORD, or `npm run bench -- --fetch`); skipped');
  process.exit(0);
}
deadline(170_000, 'supervisord');
const version = execFileSync(sv.argv[0], [...sv.argv.slice(1), '--version'], {
  env: sv.env,
  encoding: 'utf8',
}).trim();
const SLEEP = realpathSync('/bin/sleep');
const WRITER = join(ROOT, 'bench', 'fixtures', 'log-burst.mjs');

const dir = tempDir('emp-bench-sv-');
const sock = join(dir, 'sv.sock');
mkdirSync(join(dir, 'logs'));

/** One XML-RPC call on the unix socket; resolves with the response body, rejects on a fault. */
function rpc(method, ...params) {
  const value = (p) => (typeof p === 'boolean' ? `<boolean>${p ? 1 : 0}</boolean>` : `<string>${p}</string>`);
  const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params
    .map((p) => `<param><value>${value(p)}</value></param>`)
    .join('')}</params></methodCall>`;
  return new Promise((done, fail) => {
    const req = request(
      { socketPath: sock, path: '/RPC2', method: 'POST', headers: { 'content-type': 'text/xml' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => (text.includes('<fault>') ? fail(new Error(`${method}: ${text}`)) : done(text)));
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

function config(n) {
  const programs = Array.from(
    { length: n },
    (_, i) =>
      `[program:a${i}]\ncommand = /bin/sleep 1000\nstartsecs = 0\nautorestart = false\nstdout_logfile = ${dir}/logs/a${i}.log\nredirect_stderr = true\n`,
  );
  return `[unix_http_server]
file = ${sock}
[supervisord]
nodaemon = true
logfile = ${dir}/supervisord.log
pidfile = ${dir}/supervisord.pid
childlogdir = ${dir}/logs
minfds = 1024
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:burst]
command = ${process.execPath} ${WRITER} ${LOG_BYTES} - ${dir}/burst.mark
autostart = false
startsecs = 0
autorestart = false
stdout_logfile = ${dir}/burst.log
stdout_logfile_maxbytes = 0
stdout_logfile_backups = 0
${programs.join('')}`;
}

let pid;
/** Resolves once `n` children of supervisord not in `old` run /bin/sleep: their pids. */
const sleepers = (n, old, timeout) => childrenRunning(pid, SLEEP, n, 'supervisord', old, timeout);
const gone = (pids) => allGone(pids, 'supervisord');
const idle = () => idleUsage(pid, SETTLE_S, IDLE_S);

const rows = [];
const conf = join(dir, 'supervisord.conf');
writeFileSync(conf, config(N));
let t0 = nowMs();
const child = spawn(sv.argv[0], [...sv.argv.slice(1), '-c', conf], { env: sv.env, stdio: 'ignore' });
pid = child.pid;
track(pid);
const exited = new Promise((r) => child.once('exit', r));
try {
  // cold, footprint, stop
  let pids = await sleepers(N);
  const boot = nowMs() - t0;
  result(`cold-boot-sleep-${N}`, 'supervisord', boot);
  rows.push([`supervisord started with ${N} programs -> all exec'd /bin/sleep`, fmt(boot)]);
  const withN = await idle();
  result(`rss-${N}`, 'supervisord', withN.rss);
  result(`idle-cpu-${N}`, 'supervisord', withN.cpu);
  rows.push([`VmRSS with ${N} programs, MiB / idle CPU %`, `${fmt(withN.rss)} / ${fmt(withN.cpu, 2)}`]);
  t0 = nowMs();
  await rpc('supervisor.stopAllProcesses', false);
  const stop = (await gone(pids)) - t0;
  result(`stop-delete-sleep-${N}`, 'supervisord', stop);
  rows.push([`stopAllProcesses (${N}) -> pids gone`, fmt(stop)]);

  // reaction
  await rpc('supervisor.startProcess', 'a0', true);
  pids = await sleepers(1, new Set(pids));
  const restart = [];
  for (let i = 0; i < TOUCHES; i++) {
    await sleep(150 + Math.random() * 100);
    t0 = nowMs();
    await rpc('supervisor.stopProcess', 'a0', true);
    await rpc('supervisor.startProcess', 'a0', false);
    pids = await sleepers(1, new Set(pids), 10_000);
    restart.push(nowMs() - t0);
  }
  result('touch-exec', 'supervisord', median(restart), { p99: percentile(restart, 99) });
  rows.push([
    `stopProcess + startProcess -> new pid exec'd, p50 / p99 of ${TOUCHES}`,
    `${fmt(median(restart))} / ${fmt(percentile(restart, 99))}`,
  ]);
  await rpc('supervisor.stopProcess', 'a0', true);

  // log
  const out = join(dir, 'burst.log');
  execFileSync('sync', ['-f', dir]);
  const c0 = cpuTicks(pid);
  await rpc('supervisor.startProcess', 'burst', false);
  const limit = nowMs() + 60_000;
  let size = 0;
  while ((size = existsSync(out) ? statSync(out).size : 0) < LOG_BYTES && nowMs() < limit) await sleep(2);
  const seconds = (nowMs() - Number(readFileSync(join(dir, 'burst.mark'), 'utf8'))) / 1000;
  const cpuS = (cpuTicks(pid) - c0) / CLK_TCK;
  const rate = size / MiB / seconds;
  result('log-rate', 'supervisord', rate, { bytes: size });
  result('log-cpu', 'supervisord', cpuS / (LOG_BYTES / 1024 ** 3));
  result('log-dropped', 'supervisord', LOG_BYTES - size);
  rows.push([
    `${fmt(LOG_BYTES / MiB, 0)} MiB to stdout -> stdout_logfile, MiB/s / CPU s per GiB`,
    `${fmt(rate, 0)} / ${fmt(cpuS / (LOG_BYTES / 1024 ** 3), 2)}`,
  ]);
} finally {
  child.kill('SIGTERM');
  await within(exited, 15_000);
  untrack(pid);
}
printTable(
  `supervisord ${version} (XML-RPC on its unix socket), ms unless said`,
  ['measured', 'supervisord'],
  rows,
);
process.exit(0);
