// uWSGI's Emperor side by side, where the comparison is fair (skipped when `uwsgi` is not installed).
// Its vassals are uWSGI instances (master + 1 worker, no app, a unix socket in the temp dir); the
// Emperor's default `dir://` monitor polls the directory every 3 s (--emperor-freq), with no inotify.
//   reaction : touch of the vassal file -> "[emperor] reload" line and the new worker's
//              "spawned uWSGI worker" line (uWSGI reloads a touched vassal gracefully: SIGHUP,
//              the master re-execs, a new worker is forked). TOUCHES touches (default 15: each
//              costs up to 3 s of polling, plus a random 0-3 s pause).
//   footprint: the Emperor process's VmRSS and idle CPU with 0 and 100 vassals (each vassal is two
//              uWSGI processes, so 1000 are left out on this shared machine).
// Usage: node bench/uwsgi.mjs reaction [TOUCHES] | footprint [N...] | reload (SECONDS=5 RELOADS=3)
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLK_TCK,
  cleanEnv,
  cpuTicks,
  deadline,
  fmt,
  nowMs,
  printTable,
  result,
  removeDir,
  rssKb,
  sleep,
  tempDir,
  track,
  untrack,
  latencyRow,
  median,
  shell,
  within,
} from './lib.mjs';
import { WSGI_DIR, freePort, probe, runRate, runWrk } from './sockets-lib.mjs';

const mode = process.argv[2] ?? 'reaction';
let uwsgi;
try {
  uwsgi = execFileSync('sh', ['-c', 'command -v uwsgi'], { encoding: 'utf8' }).trim();
} catch {
  console.log('uwsgi is not installed (Debian: apt-get install -y uwsgi); skipped');
  process.exit(0);
}
deadline(115_000, `uwsgi ${mode}`);

const vassalIni = (dir) => `[uwsgi]\nsocket = ${dir}/%n.sock\n`;

function startUwsgiEmperor(n, ini = vassalIni, extraArgs = []) {
  const dir = tempDir('emp-bench-uw-');
  const vassals = join(dir, 'vassals');
  mkdirSync(vassals);
  for (let i = 0; i < n; i++) writeFileSync(join(vassals, `a${i}.ini`), ini(dir));
  const child = spawn(uwsgi, ['--emperor', vassals, ...extraArgs], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child.pid);
  const lines = [];
  const pids = new Set();
  const waiters = new Set();
  const onData = (stream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (c) => {
      const at = nowMs();
      buf += c;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push({ text, at });
        for (const m of text.matchAll(/pid: (\d+)/g)) {
          pids.add(Number(m[1]));
          track(Number(m[1]));
        }
      }
      for (const w of [...waiters]) w();
    });
  };
  onData(child.stdout);
  onData(child.stderr);
  const exited = new Promise((r) => child.once('exit', r));
  const waitLines = (re, count, from = 0, timeout = 30_000) =>
    new Promise((done, fail) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        fail(new Error(`uwsgi: timed out waiting for ${count} × ${re}`));
      }, timeout);
      let i = from;
      const got = [];
      const check = () => {
        for (; i < lines.length; i++) if (re.test(lines[i].text)) got.push(lines[i]);
        if (got.length >= count) {
          clearTimeout(timer);
          waiters.delete(check);
          done(got);
        }
      };
      waiters.add(check);
      check();
    });
  return {
    pid: child.pid,
    vassals,
    lines,
    waitLines,
    async stop() {
      child.kill('SIGINT'); // SIGTERM is a brutal reload for uWSGI, SIGINT a shutdown
      await within(exited, 10_000);
      untrack(child.pid);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
        untrack(pid);
      }
      removeDir(dir);
    },
  };
}

if (mode === 'reaction') {
  const TOUCHES = Number(process.argv[3] ?? 15);
  const em = startUwsgiEmperor(1);
  await em.waitLines(/spawned uWSGI worker 1/, 1);
  await sleep(500);
  const reload = [];
  const worker = [];
  for (let i = 0; i < TOUCHES; i++) {
    // Uniformly random phase against the 3 s poll (a shorter pause would phase-lock to it).
    await sleep(Math.random() * 3000);
    const from = em.lines.length;
    const t0 = nowMs();
    const secs = Date.now() / 1000;
    utimesSync(join(em.vassals, 'a0.ini'), secs, secs);
    const [w] = await em.waitLines(/spawned uWSGI worker 1 /, 1, from, 15_000);
    const r = em.lines.slice(from).find((l) => /\[emperor\] reload/.test(l.text));
    worker.push(w.at - t0);
    if (r) reload.push(r.at - t0);
  }
  await em.stop();
  result('touch-spawn', 'uwsgi', median(worker), { reload: median(reload) });
  printTable(
    `uWSGI Emperor reaction: touch -> reload (${TOUCHES} touches, default 3 s polling), ms from just before utimes(), line arrival`,
    ['measured to', 'p50', 'p90', 'p99', 'min', 'max'],
    [latencyRow('"[emperor] reload" line', reload), latencyRow('new "spawned uWSGI worker" line', worker)],
  );
} else if (mode === 'reload' && /UNABLE to load/.test(shell(`${uwsgi} --plugin python3 --version 2>&1`))) {
  console.log(
    'uwsgi has no python3 plugin (Debian: apt-get install -y uwsgi-plugin-python3); reload skipped',
  );
} else if (mode === 'reload') {
  // Reload under load, as sockets-reload.mjs for the emperor: a Python WSGI app
  // (test/fixtures/wsgi_app.py) in one vassal, master + 3 workers on an HTTP/1.1 socket (keep-alive, as the Node app), wrk (or
  // BENCH_RATE req/s of bench/rate-load.mjs) for SECONDS in steady state, then again with RELOADS
  // touches of the vassal file spread over the run. uWSGI reloads a touched vassal gracefully: the
  // master keeps the socket, lets its workers finish and re-execs. The Emperor polls every 1 s
  // here (--emperor-freq 1) so that every reload falls within the run.
  const SECONDS = Number(process.env.SECONDS ?? 5);
  const RELOADS = Number(process.env.RELOADS ?? 3);
  const RATE = Number(process.env.BENCH_RATE ?? 0);
  const port = await freePort();
  const ini = () =>
    `[uwsgi]\nplugins = python3\nmaster = true\nprocesses = 3\nhttp11-socket = 127.0.0.1:${port}\nchdir = ${WSGI_DIR}\nmodule = wsgi_app:app\n`;
  const em = startUwsgiEmperor(1, ini, ['--emperor-freq', '1']);
  await em.waitLines(/spawned uWSGI worker 3 /, 1);
  const limit = nowMs() + 20_000;
  while (!(await probe(port)).ok && nowMs() < limit) await sleep(50);
  for (let i = 0; i < 20; i++) await probe(port);
  const load = () => {
    if (RATE === 0)
      return { done: runWrk(port, { seconds: SECONDS }), countedFrom: Promise.resolve(nowMs()) };
    let onStart;
    const countedFrom = new Promise((r) => (onStart = r));
    return { done: runRate(port, { rate: RATE, seconds: SECONDS, onStart }), countedFrom };
  };
  const steady = await load().done;
  const from = em.lines.length;
  const run = load();
  const start = await run.countedFrom;
  for (let i = 1; i <= RELOADS; i++) {
    await sleep(Math.max(0, start + (i * SECONDS * 1000) / (RELOADS + 1) - nowMs()));
    const secs = Date.now() / 1000;
    utimesSync(join(em.vassals, 'a0.ini'), secs, secs);
  }
  const reloaded = await run.done;
  const reloads = em.lines.slice(from).filter((l) => /\[emperor\] reload/.test(l.text)).length;
  await em.stop();
  const failed = reloaded.errors + reloaded.non2xx;
  result('reload-failed-gunicorn-ready+rn', 'uwsgi', failed, { requests: reloaded.requests, reloads });
  result('reload-p99-ratio-gunicorn-ready+rn', 'uwsgi', reloaded.p99 / steady.p99, {
    steady: steady.p99,
    reloaded: reloaded.p99,
  });
  printTable(
    `uWSGI Emperor, reload under load: ${RATE ? `${RATE} req/s` : 'wrk -t2 -c32'}, ${SECONDS} s, ${RELOADS} touches (${reloads} reloads logged in the run), latency in ms`,
    ['run', 'requests', 'failed (errors + non-2xx)', 'p50', 'p99', 'max'],
    [steady, reloaded].map((r, i) => [
      i === 0 ? 'steady' : 'reloading',
      r.requests,
      r.errors + r.non2xx,
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.max, 1),
    ]),
  );
} else {
  const rows = [];
  // SETTLE_S and IDLE_S as in footprint.mjs (defaults 8 and 10 here); sizes from argv.
  const SETTLE_S = Number(process.env.SETTLE_S ?? 8);
  const IDLE_S = Number(process.env.IDLE_S ?? 10);
  const sizes = process.argv.slice(3).map(Number);
  for (const n of sizes.length > 0 ? sizes : [0, 100]) {
    const em = startUwsgiEmperor(n);
    if (n > 0) await em.waitLines(/\[emperor\] vassal .* is ready to accept requests/, n, 0, 60_000);
    else await em.waitLines(/\*\*\* starting uWSGI Emperor \*\*\*/, 1);
    const busy = rssKb(em.pid);
    await sleep(SETTLE_S * 1000);
    const c0 = cpuTicks(em.pid);
    const t0 = nowMs();
    await sleep(IDLE_S * 1000);
    const ticks = cpuTicks(em.pid) - c0;
    const pct = (100 * ticks) / CLK_TCK / ((nowMs() - t0) / 1000);
    result(`rss-${n}`, 'uwsgi', rssKb(em.pid) / 1024);
    result(`idle-cpu-${n}`, 'uwsgi', pct);
    rows.push([
      `uWSGI Emperor, ${n} vassals`,
      fmt(busy / 1024),
      fmt(rssKb(em.pid) / 1024),
      fmt(rssKb(em.pid, 'VmHWM') / 1024),
      `${fmt(pct, 2)} (${ticks} ticks)`,
    ]);
    await em.stop();
  }
  printTable(
    `uWSGI Emperor footprint (the Emperor process only): RSS in MiB; idle CPU over ${IDLE_S} s after ${SETTLE_S} s settling`,
    ['process', 'VmRSS when all run', 'VmRSS, steady', 'VmHWM (peak)', 'idle CPU %'],
    rows,
  );
}
