#!/usr/bin/env node
// Runs the compiled tests with node's runner, one process per file. Files are named explicitly
// (node --test would otherwise also run fixture apps found under test/ folders).
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dirs = [
  ...readdirSync('packages').map((p) => join('packages', p, 'dist', 'test')),
  join('test', 'dist'),
];
const files = dirs
  .filter((d) => existsSync(d))
  .flatMap((d) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.test.js'))
      .map((f) => join(d, f)),
  );
// Files that mostly wait (a cron job for the wall clock's next minute) start first, so that the
// other files run beside them instead of after them.
const SLOW_FIRST = ['cron.test.js'];
const slowFirst = (f) => (SLOW_FIRST.some((s) => f.endsWith(s)) ? 0 : 1);
files.sort((a, b) => slowFirst(a) - slowFirst(b));
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
if (selected.length === 0) {
  console.error('no test files found: did `tsc -b` run?');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
