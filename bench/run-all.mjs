// Runs every benchmark in turn, each in its own process (each stays under 2 minutes), and prints
// the machine first. Needs a build (`npx tsc -b`). Usage: node bench/run-all.mjs [name...]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, cleanEnv, shell } from './lib.mjs';

const BENCHES = [
  ['reaction', []],
  ['cold-start', ['sleep']],
  ['cold-start', ['node']],
  ['footprint', []],
  ['stop', []],
  ['log-throughput', []],
  ['uwsgi', ['reaction']],
  ['uwsgi', ['footprint']],
];
const only = process.argv.slice(2);

console.log(`date -u: ${shell('date -u')}`);
console.log(`nproc: ${shell('nproc')}; kernel: ${shell('uname -r')}; node: ${process.version}`);
console.log(shell('free -g'));
console.log(`loadavg: ${shell('cat /proc/loadavg')}`);

let failed = 0;
for (const [name, args] of BENCHES) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`\n## ${name} ${args.join(' ')} (loadavg before: ${shell('cat /proc/loadavg')})`);
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', `${name}.mjs`), ...args], {
    stdio: 'inherit',
    env: cleanEnv(),
    timeout: 150_000,
  });
  if (r.status !== 0) {
    failed += 1;
    console.log(`${name} ${args.join(' ')}: failed (status ${r.status}, signal ${r.signal})`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
