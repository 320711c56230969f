// `npm run bench`: every benchmark of SPEC §7 in a quick mode (fewer repetitions, smaller sizes,
// shorter idle windows; 4-5 minutes on 2 cores), then the same measurements against uWSGI's
// Emperor, PM2 and supervisord where they are found, and one table of it all: each figure of
// another supervisor is also given as a ratio to the emperor's.
//
// It reuses the scripts beside it, one process each, with BENCH_RESULTS naming a file they append
// their figures to (lib.mjs `result()`); their own tables go to a log file, named at the end.
// NODE_EXTRA_CA_CERTS is unset for every process on every side (lib.mjs cleanEnv(): it costs each
// Node start ~35 ms on this machine). Loopback and temp dirs only; every process a script starts
// is stopped by pid when it ends. The load average is printed before each step.
//
// Usage: npm run bench [-- --fetch] [-- STEP...]
//   --fetch : first install PM2 (npm) and unpack Debian's supervisor package (apt-get download, no
//             install) into the bench cache, BENCH_CACHE (default ~/.cache/emperor-bench).
//   STEP    : run only the steps whose name contains one of these words (e.g. `pm2 reaction`).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, ROOT, cleanEnv, fmt, nowMs, shell } from './lib.mjs';

const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const MiB = 1024 * 1024;

if (args.includes('--fetch')) fetchOthers();

const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const LOG = join('/tmp', `emperor-bench-${stamp}.log`);
const RESULTS = join('/tmp', `emperor-bench-${stamp}.jsonl`);

// name, script, argv, extra env, time limit (s)
// Node settles for some seconds after a start (lazy compilation, V8's memory reducer): 10 s before
// the idle window, on every side alike (footprint.mjs alone waits 15 s).
const QUICK = { BENCH_QUICK: '1', BENCH_REPS: '1', SETTLE_S: '10', IDLE_S: '5' };
// Without wrk, the reload runs use the bench's own open-loop client at 1000 requests/s.
const LOAD = shell('command -v wrk') === '?' ? { BENCH_RATE: '1000' } : {};
const STEPS = [
  ['emperor reaction', 'reaction', ['15'], {}, 60],
  ['emperor stop', 'stop', ['100'], QUICK, 60],
  ['emperor cold-start', 'cold-start', ['sleep', '10', '100'], QUICK, 90],
  ['emperor footprint', 'footprint', ['100', '1000'], QUICK, 120],
  ['emperor reload', 'sockets-reload', ['node,gunicorn-ready+rn', '5', '3', '1'], { ...QUICK, ...LOAD }, 120],
  ['emperor recycle', 'recycle', ['10', '3', '1', '0'], LOAD, 120],
  ['emperor on-demand', 'sockets-ondemand', ['6'], {}, 90],
  ['emperor touch-answer', 'sockets-touch', ['8'], {}, 60],
  [
    'emperor log',
    'log-throughput',
    [String(256 * MiB)],
    { BENCH_REPS: '1', SETTLE_S: '2', AFTER_S: '5' },
    90,
  ],
  ['uwsgi reaction', 'uwsgi', ['reaction', '3'], {}, 60],
  ['uwsgi footprint', 'uwsgi', ['footprint', '100'], QUICK, 90],
  ['uwsgi reload', 'uwsgi', ['reload'], LOAD, 60],
  // The same [uwsgi] vassal file run by both; it skips itself without uwsgi and its python3 plugin.
  ['uwsgi-emperor', 'uwsgi-emperor', ['3'], {}, 300],
  ['pm2', 'pm2', ['100'], { ...QUICK, ...LOAD, TOUCHES: '10', SECONDS: '5', RELOADS: '3' }, 170],
  ['supervisord', 'supervisord', ['100'], { ...QUICK, TOUCHES: '10' }, 170],
];

// --- the table: rows by id, what each means, and the goal (a check of the emperor's figures) --------
// value(tool) reads a figure; goals get the row's figures { emperor, direct, cat }.
const ROWS = [
  ['§7.1 Cold start'],
  [
    'cold-drop-sleep-10',
    "10 /bin/sleep apps added to a running supervisor -> all exec'd, ms",
    'ms',
    (v) => ratioGoal(v),
  ],
  [
    'cold-drop-sleep-100',
    "100 /bin/sleep apps added to a running supervisor -> all exec'd, ms",
    'ms',
    (v) => ratioGoal(v),
  ],
  ['cold-boot-sleep-100', "supervisor started with 100 /bin/sleep apps -> all exec'd, ms", 'ms'],
  ['§7.2 Footprint'],
  ['rss-100', 'supervisor RSS, 100 apps, MiB', 'MiB', (v) => goal(v.emperor <= 60, '<= 60')],
  ['rss-1000', 'supervisor RSS, 1000 apps, MiB', 'MiB', (v) => goal(v.emperor <= 80, '<= 80')],
  ['idle-cpu-100', 'idle CPU, 100 apps, % of a core', '%', (v) => goal(v.emperor < 0.5, '< 0.5')],
  ['idle-cpu-1000', 'idle CPU, 1000 apps, % of a core', '%', (v) => goal(v.emperor < 0.5, '< 0.5')],
  ['§7.3 Reload under load'],
  [
    'reload-failed',
    'Node app, 3 instances: failed requests during 3 reloads under load',
    'n',
    (v) => goal(v.emperor === 0, '0'),
  ],
  [
    'reload-p99-ratio',
    'Node app: p99 while reloading / steady p99',
    'x',
    (v) => goal(v.emperor <= 2, '<= 2'),
  ],
  [
    'reload-failed-gunicorn-ready+rn',
    'Python WSGI app, 3 instances: failed requests during 3 reloads',
    'n',
    (v) => goal(v.emperor === 0, '0'),
  ],
  [
    'reload-p99-ratio-gunicorn-ready+rn',
    'Python WSGI app: p99 while reloading / steady p99',
    'x',
    (v) => goal(v.emperor <= 2, '<= 2'),
  ],
  ['Recycling (max-lifetime = 3 s, Node app, 3 instances)'],
  [
    'recycle-failed',
    'failed requests while instances are recycled under load',
    'n',
    (v) => goal(v.emperor === 0, '0'),
  ],
  ['recycle-p99-ratio', 'p99 while recycling / steady p99', 'x'],
  ['§7.4 Socket activation'],
  [
    'ondemand-over',
    'first connection to a sleeping app, over its own start, ms',
    'ms',
    (v) => goal(v.emperor <= 10, '<= 10'),
  ],
  ['ondemand-failed', 'first connections refused or failed', 'n', (v) => goal(v.emperor === 0, '0')],
  ['§7.5 Reaction'],
  [
    'touch-spawn',
    'touch -> new generation spawned (log line), p50 ms',
    'ms',
    (v) => goal(v.emperor <= 20, '<= 20'),
  ],
  ['touch-exec', "restart asked -> new process exec'd, p50 ms", 'ms'],
  [
    'touch-answer-over',
    'touch -> new pid answering on the owned socket, over the app start, ms',
    'ms',
    (v) => goal(v.emperor <= 20, '<= 20'),
  ],
  [
    'stop-delete-sleep-100',
    '100 apps removed (files deleted / delete / stop) -> pids gone, ms',
    'ms',
    (v) => goal(v.emperor < 1000, '< 1000'),
  ],
  [
    'stop-sigterm-sleep-100',
    'supervisor SIGTERMed with 100 apps -> all gone, ms',
    'ms',
    (v) => goal(v.emperor < 1000, '< 1000'),
  ],
  ['§7.6 Log throughput'],
  [
    'log-rate',
    '256 MiB to stdout as fast as possible -> log file, MiB/s',
    'MiB/s',
    (v) => ratioGoal(v, 0.8, '>='),
  ],
  ['log-cpu', 'supervisor CPU per GiB logged, s', 's'],
  ['log-dropped', 'bytes dropped', 'B', (v) => goal(v.emperor === 0, '0')],
  ['log-rss-growth', 'RSS growth 5 s after the burst, MiB', 'MiB', (v) => goal(v.emperor <= 10, '<= 10')],
  ['The same [uwsgi] vassal file (bench/uwsgi-emperor.mjs)'],
  ['uwe-touch-answer', 'touch -> a new worker answering, p50 ms', 'ms'],
  [
    'uwe-reload-failed',
    'keep-alive load: failed requests per reload (a request on a closed connection sent again once)',
    'n',
    (v) => goal(v.emperor === 0, '0'),
  ],
  ['uwe-reload-reset', 'keep-alive load: requests on a connection closed under them, per reload', 'n'],
  ['uwe-rss-supervisor', 'RSS of the supervisor, 1 vassal, MiB', 'MiB'],
  ['uwe-rss-all', 'RSS of the supervisor + the vassal (master, 4 workers), MiB', 'MiB'],
];
const TOOLS = ['emperor', 'uwsgi', 'pm2', 'supervisord'];
const TOOL_NAMES = { emperor: 'emperor', uwsgi: "uWSGI's Emperor", pm2: 'PM2', supervisord: 'supervisord' };

function goal(ok, text) {
  return ok === undefined ? text : `${text}: ${ok ? 'met' : '**not met**'}`;
}
/** A goal on the emperor's figure as a ratio to the direct one (<= 1.2 unless said). */
function ratioGoal(v, limit = 1.2, op = '<=') {
  const r = v.emperor / v.direct;
  const ok = Number.isFinite(r) ? (op === '<=' ? r <= limit : r >= limit) : undefined;
  return goal(ok, `${op} ${limit}x direct (${fmt(r, 2)}x)`);
}

// --- helpers ----------------------------------------------------------------------------------------
function fetchOthers() {
  mkdirSync(CACHE, { recursive: true });
  console.log(`fetching PM2 into ${join(CACHE, 'pm2')} (npm)`);
  // npm keeps the environment as it is: a registry behind a TLS proxy needs NODE_EXTRA_CA_CERTS.
  execFileSync('npm', ['i', '--no-audit', '--no-fund', '--prefix', join(CACHE, 'pm2'), 'pm2@7'], {
    stdio: 'inherit',
    timeout: 300_000,
  });
  try {
    const tmp = join(CACHE, 'deb');
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    execFileSync('apt-get', ['download', 'supervisor'], { cwd: tmp, stdio: 'inherit' });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    rmSync(join(CACHE, 'supervisor'), { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-x', join(tmp, deb), join(CACHE, 'supervisor')], { stdio: 'inherit' });
    rmSync(tmp, { recursive: true, force: true });
    console.log(`supervisor unpacked into ${join(CACHE, 'supervisor')}`);
  } catch (err) {
    console.log(`supervisor not fetched (needs Debian's apt-get and dpkg-deb): ${err.message}`);
  }
}

const load = () => shell('cut -d" " -f1-3 /proc/loadavg');

function versionOf(cmd) {
  const v = shell(`${cmd} 2>/dev/null`);
  return v === '?' || v === '' ? 'not found' : v.split('\n')[0];
}
function pm2Version() {
  for (const dir of [process.env.BENCH_PM2, join(CACHE, 'pm2', 'node_modules', 'pm2')]) {
    if (dir && existsSync(join(dir, 'package.json')))
      return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  }
  return versionOf('pm2 --version');
}
function supervisordVersion() {
  const onPath = versionOf('supervisord --version');
  if (onPath !== 'not found') return onPath;
  const cached = join(CACHE, 'supervisor', 'usr', 'bin', 'supervisord');
  if (!existsSync(cached)) return 'not found';
  const lib = join(CACHE, 'supervisor', 'usr', 'lib', 'python3', 'dist-packages');
  return `${versionOf(`PYTHONPATH=${lib} python3 ${cached} --version`)} (unpacked in the bench cache)`;
}

function runStep([, script, argv, env, limitS]) {
  return new Promise((done) => {
    const fd = openSync(LOG, 'a');
    const child = spawn(process.execPath, [join(ROOT, 'bench', `${script}.mjs`), ...argv], {
      env: cleanEnv({ ...env, BENCH_RESULTS: RESULTS }),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    // Each script has its own deadline; this one only guards against a script that hangs.
    const timer = setTimeout(() => child.kill('SIGTERM'), limitS * 1000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal });
    });
  });
}

// --- the run ----------------------------------------------------------------------------------------
const header = [
  `date: ${shell('date -u +%FT%TZ')}`,
  `machine: ${shell('nproc')} cores (${shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim()}), ${shell('free -m | awk \'/Mem:/{print $2" MiB"}\'')}, kernel ${shell('uname -r')}, ${shell('. /etc/os-release && echo $PRETTY_NAME')}`,
  `versions: emperor ${JSON.parse(readFileSync(join(ROOT, 'packages', 'cli', 'package.json'), 'utf8')).version} (${shell(`git -C ${ROOT} rev-parse --short HEAD`)}), node ${process.version}, uWSGI ${versionOf('uwsgi --version')}, PM2 ${pm2Version()}, supervisord ${supervisordVersion()}, wrk ${versionOf('wrk -v 2>&1 | head -1 | cut -d" " -f2')}`,
  'NODE_EXTRA_CA_CERTS: unset for every process of every side',
  ...(LOAD.BENCH_RATE ? ['wrk not found: the reload runs use bench/rate-load.mjs at 1000 requests/s'] : []),
];
for (const h of header) console.log(h);
console.log(`per-step output: ${LOG}`);
const loads = [];
const started = nowMs();
let failed = 0;
for (const step of STEPS) {
  if (only.length > 0 && !only.some((w) => step[0].includes(w))) continue;
  const before = load();
  const t0 = nowMs();
  process.stdout.write(`${step[0].padEnd(22)} load ${before} ... `);
  const r = await runStep(step);
  const s = (nowMs() - t0) / 1000;
  loads.push(Number(before.split(' ')[0]));
  if (r.code !== 0) failed += 1;
  console.log(`${fmt(s)} s${r.code === 0 ? '' : ` FAILED (${r.signal ?? `exit ${r.code}`}; see the log)`}`);
}
const minutes = (nowMs() - started) / 60_000;

const figures = new Map(); // id -> tool -> record
if (existsSync(RESULTS)) {
  for (const line of readFileSync(RESULTS, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line);
    if (!figures.has(r.id)) figures.set(r.id, {});
    figures.get(r.id)[r.tool] = r;
  }
}
const num = (x) => (Math.abs(x) >= 100 ? fmt(x, 0) : fmt(x, x !== 0 && Math.abs(x) < 1 ? 2 : 1));
const cell = (id, tool) => {
  const f = figures.get(id) ?? {};
  const r = f[tool];
  if (!r) return '-';
  const e = f.emperor?.value;
  if (tool === 'emperor' || tool === 'direct' || e === undefined) return num(r.value);
  const ratio = r.value / e;
  return Number.isFinite(ratio) && e !== 0
    ? `${num(r.value)} (${fmt(ratio, ratio < 10 ? 2 : 0)}x)`
    : num(r.value);
};
const usedTools = TOOLS.filter((t) => [...figures.values()].some((f) => f[t]));
const head = ['measure', 'goal (emperor)', 'direct', ...usedTools.map((t) => TOOL_NAMES[t])];
const lines = [];
for (const [id, label, , check] of ROWS) {
  if (label === undefined) {
    lines.push([`**${id}**`, ...head.slice(1).map(() => '')]);
    continue;
  }
  const f = figures.get(id) ?? {};
  const v = Object.fromEntries(Object.entries(f).map(([t, r]) => [t, r.value]));
  let direct = cell(id, 'direct');
  if (id === 'log-rate' && f.cat) direct = `${num(f.direct?.value)}; into cat ${num(f.cat.value)}`;
  lines.push([
    label,
    check && f.emperor ? check(v) : check ? goal(undefined, check({}).split(':')[0]) : '',
    direct,
    ...usedTools.map((t) => cell(id, t)),
  ]);
}
const widths = head.map((_, i) => Math.max(...[head, ...lines].map((r) => String(r[i]).length)));
const row = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
console.log('');
console.log(row(head));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const l of lines) console.log(row(l));
console.log('');
const loadRange = loads.length > 0 ? `${fmt(Math.min(...loads))}-${fmt(Math.max(...loads))}` : 'no step ran';
console.log(
  `(x): ratio of the figure to the emperor's. Load average (1 min) before the steps: ${loadRange}; after: ${load()}. Run time: ${fmt(minutes, 1)} min.`,
);
console.log(`per-step tables and details: ${LOG}`);
process.exitCode = failed > 0 ? 1 : 0;
