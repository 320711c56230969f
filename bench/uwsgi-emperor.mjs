// The same `[uwsgi]` vassal file run by the emperor and by uWSGI's own Emperor, side by side in
// one run, rounds interleaved (skipped when uwsgi or its python3 plugin is not installed).
// The file: test/fixtures/wsgi_app.py, master + 4 workers on an `http11-socket` (keep-alive).
// uWSGI's Emperor runs as Debian's uwsgi-emperor package runs it (`master`, `no-orphans`,
// `emperor = DIR`, its default 3 s `dir://` polling), minus the package's `uid`/`gid`.
//   touch -> new answering : from utimes() of the vassal file to the first answer of the new
//                            generation under the load (the emperor: a worker of the new master;
//                            uWSGI: a worker that was not answering before, forked by the re-exec'd
//                            master). TRACE=1 prints answers per 250 ms and the emperor's events.
//   keep-alive load        : CLIENTS connections in a loop, each reused request after request.
//                            "reset" = a request sent on a reused connection that the server closed
//                            without an answer (what a client that does not resend sees as an
//                            error); "failed" = what still fails when such a request is sent again
//                            once on a new connection, as browsers, curl and nginx do (RFC 9112
//                            §9.3.1), plus every other error.
//   footprint              : VmRSS of the supervisor, and of the supervisor with every process of
//                            the vassal (master + workers), 3 s after the vassal answers.
// Usage: node bench/uwsgi-emperor.mjs [ROUNDS=3]  (CLIENTS=4), after `npx tsc -b` (as `npm run bench`
// does): the keep-alive client is the tests' own, from packages/test-support/dist.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  childrenOf,
  cleanEnv,
  deadline,
  fmt,
  median,
  nowMs,
  printTable,
  removeDir,
  result,
  rssKb,
  shell,
  sleep,
  startEmperor,
  tempDir,
  track,
  untrack,
  within,
} from './lib.mjs';
import { keepAliveClient as sharedKeepAliveClient } from '@emperor/test-support';
import { WSGI_DIR, freePort } from './sockets-lib.mjs';

const ROUNDS = Number(process.argv[2] ?? 3);
// uWSGI's sync workers serve one connection each until it closes: as many connections as workers.
const CLIENTS = Number(process.env.CLIENTS ?? 4);
let uwsgi;
try {
  uwsgi = execFileSync('sh', ['-c', 'command -v uwsgi'], { encoding: 'utf8' }).trim();
} catch {
  console.log('uwsgi is not installed (Debian: apt-get install -y uwsgi uwsgi-plugin-python3); skipped');
  process.exit(0);
}
if (/UNABLE to load/.test(shell(`${uwsgi} --plugin python3 --version 2>&1`))) {
  console.log('uwsgi has no python3 plugin (Debian: apt-get install -y uwsgi-plugin-python3); skipped');
  process.exit(0);
}
deadline(60_000 + ROUNDS * 2 * 40_000, 'uwsgi-emperor');

const vassalFile = (port) =>
  `[uwsgi]\nplugins = python3\nmaster = true\nprocesses = 4\nhttp11-socket = 127.0.0.1:${port}\nchdir = ${WSGI_DIR}\nmodule = wsgi_app:app\n`;

/**
 * One keep-alive connection used request after request (the tests' client, from
 * @emperor/test-support), counted as the header says: `reset` = requests it sent again on a new
 * connection, `failed` = what still failed (then the loop pauses 10 ms, as a client would).
 */
function keepAliveClient(port) {
  const c = sharedKeepAliveClient(port);
  const stats = { ok: 0, reset: 0, failed: 0, errors: [] };
  const get = async () => {
    const before = c.retried();
    try {
      const answer = await c.get();
      stats.ok += 1;
      return answer;
    } catch (err) {
      stats.failed += 1;
      stats.errors.push(err.code ?? err.message);
      await sleep(10);
      return undefined;
    } finally {
      stats.reset += c.retried() - before;
    }
  };
  return { get, stats, close: c.close };
}

/** Every descendant of `pid`. */
function tree(pid) {
  const out = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop();
    for (const c of childrenOf(p)) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}
const sumRssMiB = (pids) => pids.reduce((n, p) => n + (rssKb(p) || 0), 0) / 1024;

async function answering(port, timeout = 30_000) {
  const limit = nowMs() + timeout;
  const c = keepAliveClient(port);
  try {
    while (nowMs() < limit) {
      if ((await c.get()) !== undefined) return;
      await sleep(50);
    }
  } finally {
    c.close();
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

function startUwsgiEmperor(ini) {
  const dir = tempDir('emp-bench-uwe-');
  const vassals = join(dir, 'vassals');
  mkdirSync(vassals);
  writeFileSync(join(vassals, 'app.ini'), ini);
  const child = spawn(uwsgi, ['--master', '--no-orphans', '--emperor', vassals], {
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  track(child.pid);
  const exited = new Promise((r) => child.once('exit', r));
  return {
    pid: child.pid,
    vassals,
    async stop() {
      const all = tree(child.pid);
      child.kill('SIGINT'); // SIGTERM is a brutal reload for uWSGI, SIGINT a shutdown
      await within(exited, 15_000);
      untrack(child.pid);
      for (const p of all)
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      removeDir(dir);
    },
  };
}

async function startSide(side, ini) {
  if (side === 'uwsgi') return startUwsgiEmperor(ini);
  const em = await startEmperor({ files: { 'app.ini': ini } });
  return { pid: em.pid, vassals: em.vassals, lines: em.lines, stop: () => em.stop() };
}

/** One round of one side: footprint, then a touch under keep-alive load. */
async function round(side) {
  const port = await freePort();
  const sup = await startSide(side, vassalFile(port));
  try {
    await answering(port);
    await sleep(3000);
    const rss = { supervisor: rssKb(sup.pid) / 1024, all: sumRssMiB([sup.pid, ...tree(sup.pid)]) };
    const clients = Array.from({ length: CLIENTS }, () => keepAliveClient(port));
    const seen = new Set();
    let touchedAt;
    let newAt;
    let stopped = false;
    const trace = [];
    const loops = clients.map(async (c) => {
      while (!stopped) {
        const a = await c.get();
        if (a === undefined) continue;
        if (process.env.TRACE && touchedAt !== undefined)
          trace.push([Math.round(nowMs() - touchedAt), a.master]);
        // The emperor's new generation is a new master; uWSGI re-execs the same master, whose
        // workers are all new after the reload.
        const who = side === 'uwsgi' ? a.pid : a.master;
        if (touchedAt === undefined) seen.add(who);
        else if (newAt === undefined && !seen.has(who)) newAt = nowMs();
      }
    });
    await sleep(1500);
    const before = clients.map((c) => ({ ...c.stats }));
    touchedAt = nowMs();
    const secs = Date.now() / 1000 + 1;
    utimesSync(join(sup.vassals, 'app.ini'), secs, secs);
    const limit = nowMs() + 30_000;
    while (newAt === undefined && nowMs() < limit) await sleep(20);
    await sleep(3000); // the old master's end, and the load after it
    stopped = true;
    await Promise.all(loops);
    for (const c of clients) c.close();
    if (process.env.TRACE) {
      const buckets = new Map();
      for (const [t, m] of trace) {
        const k = `${Math.floor(t / 250) * 250}:${m}`;
        buckets.set(k, (buckets.get(k) ?? 0) + 1);
      }
      console.log(side, [...buckets].map(([k, n]) => `${k}=${n}`).join(' '));
      for (const l of sup.lines ?? [])
        if (l._at >= touchedAt)
          console.log(
            `  ${Math.round(l._at - touchedAt)} ${l.event} ${l.pid ?? l.pids ?? ''} gen ${l.generation ?? ''}`,
          );
    }
    const sum = (k) => clients.reduce((n, c, i) => n + c.stats[k] - before[i][k], 0);
    return {
      touchAnswer: newAt === undefined ? NaN : newAt - touchedAt,
      requests: sum('ok') + sum('failed'),
      reset: sum('reset'),
      failed: sum('failed'),
      errors: [...new Set(clients.flatMap((c) => c.stats.errors))].join(','),
      ...rss,
    };
  } finally {
    await sup.stop();
  }
}

const runs = { emperor: [], uwsgi: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? ['emperor', 'uwsgi'] : ['uwsgi', 'emperor'];
  for (const side of order) {
    const x = await round(side);
    runs[side].push(x);
    console.log(`round ${r + 1} ${side}: ${JSON.stringify(x)}`);
  }
}
const med = (side, k) => median(runs[side].map((x) => x[k]));
const total = (side, k) => runs[side].reduce((n, x) => n + x[k], 0);
for (const side of ['emperor', 'uwsgi']) {
  result('uwe-touch-answer', side, med(side, 'touchAnswer'));
  result('uwe-reload-reset', side, total(side, 'reset') / ROUNDS);
  result('uwe-reload-failed', side, total(side, 'failed') / ROUNDS);
  result('uwe-rss-supervisor', side, med(side, 'supervisor'));
  result('uwe-rss-all', side, med(side, 'all'));
}
const name = { emperor: 'emperor', uwsgi: "uWSGI's Emperor" };
printTable(
  `The same [uwsgi] vassal file (4 workers, http11-socket), ${ROUNDS} rounds interleaved, ${CLIENTS} keep-alive connections; load ${shell('cut -d" " -f1-3 /proc/loadavg')}`,
  [
    'supervisor',
    'touch -> new worker answering, p50 ms',
    'reset per reload (no resend)',
    'failed per reload (one resend)',
    'requests per reload window',
    'RSS supervisor, MiB',
    'RSS supervisor + vassal, MiB',
  ],
  ['emperor', 'uwsgi'].map((side) => [
    name[side],
    fmt(med(side, 'touchAnswer'), 0),
    fmt(total(side, 'reset') / ROUNDS, 1),
    fmt(total(side, 'failed') / ROUNDS, 1),
    fmt(med(side, 'requests'), 0),
    fmt(med(side, 'supervisor')),
    fmt(med(side, 'all')),
  ]),
);
