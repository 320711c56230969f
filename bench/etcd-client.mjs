// Which etcd client the emperor uses: the `etcd3` package (gRPC over @grpc/grpc-js) or etcd's JSON
// gateway over node:http (packages/daemon/src/sources/etcd/client.ts). Each run is a fresh Node
// process that reads N keys under a prefix and opens a watch from the read's revision (what the
// emperor does at start); the parent times spawn -> synced, and the child reports its RSS then.
// Runs alternate between the two clients, so load on a shared machine falls on both alike.
//
//   node bench/etcd-client.mjs --etcd3 DIR [--keys 100] [--runs 7]
// DIR: a directory where `npm install etcd3` was run (not a dependency of the project).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ROOT, cleanEnv, startEtcdMember } from './lib.mjs';

const { values } = parseArgs({
  options: { etcd3: { type: 'string' }, keys: { type: 'string' }, runs: { type: 'string' } },
});
if (!values.etcd3) throw new Error('--etcd3 DIR: a directory with node_modules/etcd3');
const KEYS = Number(values.keys ?? 100);
const RUNS = Number(values.runs ?? 7);

const { port, client } = await startEtcdMember();
const text = '[vassal]\nexec = /bin/sleep 1000\nprocesses = 2\nenv = A=1\n';
for (let i = 0; i < KEYS; i++) await client.put(`/bench/vassals/app${i}`, text);

const gateway = `
import { EtcdClient } from ${JSON.stringify(join(ROOT, 'packages/daemon/dist/src/sources/etcd/client.js'))};
const c = new EtcdClient({ endpoints: [{ host: '127.0.0.1', port: ${port} }] });
const { revision, kvs } = await c.range('/bench/vassals/');
c.watch('/bench/vassals/', revision + 1n, {
  onCreated: () => { console.log(JSON.stringify({ keys: kvs.length, rss: process.memoryUsage().rss })); process.exit(0); },
  onEvents: () => {}, onCompacted: () => {}, onClosed: (e) => { throw e; },
});
`;
const grpc = `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(join(values.etcd3, 'package.json'))});
const { Etcd3 } = require('etcd3');
const c = new Etcd3({ hosts: 'http://127.0.0.1:${port}' });
const res = await c.getAll().prefix('/bench/vassals/').exec();
const w = await c.watch().prefix('/bench/vassals/').startRevision(String(BigInt(res.header.revision) + 1n)).create();
console.log(JSON.stringify({ keys: res.kvs.length, rss: process.memoryUsage().rss }));
process.exit(0);
`;

function once(code) {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c) => {
      out += c;
      if (out.includes('\n')) {
        const ms = performance.now() - t0;
        const r = JSON.parse(out);
        if (r.keys !== KEYS) fail(new Error(`read ${r.keys} keys, expected ${KEYS}`));
        done({ ms, rss: r.rss });
      }
    });
    child.once('exit', (code) => code !== 0 && fail(new Error(`exit ${code}`)));
  });
}

const results = { gateway: [], etcd3: [] };
for (let i = 0; i < RUNS; i++) {
  results.gateway.push(await once(gateway));
  results.etcd3.push(await once(grpc));
}
const median = (xs) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = (await import('node:os')).loadavg()[0].toFixed(1);
console.log(`${KEYS} keys, ${RUNS} interleaved runs each, load average ${load}`);
console.log('client            spawn->synced (median)   RSS at sync (median)');
for (const [name, rs] of Object.entries(results))
  console.log(
    `${name.padEnd(17)} ${median(rs.map((r) => r.ms))
      .toFixed(0)
      .padStart(8)} ms              ${(median(rs.map((r) => r.rss)) / 1048576).toFixed(1).padStart(6)} MB`,
  );
process.exit(0);
