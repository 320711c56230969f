#!/usr/bin/env node
// `emperor status` and `emperor status --json` wall time, end to end as a user runs them (a new
// Node process each time, over the control socket), with N vassals running; and the /metrics
// scrape time. Usage: node bench/status.mjs [N...] (default 100 1000). Needs `npx tsc -b` first.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const BIN = join(ROOT, 'packages', 'cli', 'bin', 'emperor.js');
const RUNS = Number(process.env.RUNS ?? 20);
const counts = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // adds ~35 ms to every Node start on this machine

function freePort() {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

function timeRun(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`emperor ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout };
}

function scrape(port) {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => done({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes }));
    })
      .on('error', fail)
      .end();
  });
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p90: at(0.9), min: s[0] };
}

const fmt = (x) => `${x.toFixed(1)} ms`;

async function bench(n) {
  const dir = mkdtempSync('/tmp/emp-bench-');
  const vassals = join(dir, 'vassals');
  mkdirSync(vassals);
  for (let i = 0; i < n; i++) writeFileSync(join(vassals, `app${i}.ini`), '[vassal]\nexec = sleep 3600\n');
  const control = join(dir, 'run', 'control.sock');
  const metricsPort = await freePort();
  const emperor = spawn(
    process.execPath,
    [
      BIN,
      'run',
      '--vassals',
      vassals,
      '--log-dir',
      join(dir, 'logs'),
      '--control',
      control,
      '--metrics',
      String(metricsPort),
      '--log-level',
      'warn',
      // BENCH_EMPEROR_ARGS: e.g. "--containment subreaper" to measure without cgroups.
      ...(process.env.BENCH_EMPEROR_ARGS ?? '').split(' ').filter(Boolean),
    ],
    { env, stdio: 'ignore' },
  );
  env.EMPEROR_CONTROL = control;
  try {
    // Wait until every vassal runs.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = spawnSync(process.execPath, [BIN, 'status', '--json'], { env, encoding: 'utf8' });
      if (r.status === 0) {
        const s = JSON.parse(r.stdout);
        if (s.vassals.length === n && s.vassals.every((v) => v.state === 'running')) break;
      }
      if (Date.now() > deadline) throw new Error(`not all ${n} vassals running: ${r.stderr}`);
      await new Promise((d) => setTimeout(d, 200));
    }
    const table = [];
    const json = [];
    const metrics = [];
    for (let i = 0; i < RUNS; i++) {
      table.push(timeRun(['status']).ms);
      json.push(timeRun(['status', '--json']).ms);
      metrics.push((await scrape(metricsPort)).ms);
    }
    return { n, table: stats(table), json: stats(json), metrics: stats(metrics) };
  } finally {
    emperor.kill('SIGTERM');
    await new Promise((d) => emperor.once('exit', d));
    rmSync(dir, { recursive: true, force: true });
  }
}

const node = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = process.hrtime.bigint();
  spawnSync(process.execPath, ['-e', '0'], { env });
  node.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
console.log(`node -e 0 (the floor of any Node CLI): median ${fmt(stats(node).median)}`);
console.log(
  '| vassals | `emperor status` median / p90 | `status --json` median / p90 | `/metrics` scrape median / p90 |',
);
console.log('|---:|---:|---:|---:|');
for (const n of counts.length ? counts : [100, 1000]) {
  const r = await bench(n);
  console.log(
    `| ${r.n} | ${fmt(r.table.median)} / ${fmt(r.table.p90)} | ${fmt(r.json.median)} / ${fmt(r.json.p90)} | ${fmt(r.metrics.median)} / ${fmt(r.metrics.p90)} |`,
  );
}
