// `npm run bench` (bench/bench.mjs) as docs/benchmarks.md tells to run it, narrowed to one quick
// step so that it fits a test: it must print the machine and versions, say NODE_EXTRA_CA_CERTS is
// unset, and end with the one summary table holding the emperor's figure for that step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './support.js';

const run = promisify(execFile);

void test('npm run bench -- STEP prints the summary table with the emperor figure of that step', async (t) => {
  // An empty cache: PM2 and supervisord are looked for there, and not found.
  const cache = mkdtempSync(join(tmpdir(), 'emp-bench-cache-'));
  t.after(() => {
    rmSync(cache, { recursive: true, force: true });
  });
  const { stdout } = await run(process.execPath, [join(ROOT, 'bench', 'bench.mjs'), 'emperor reaction'], {
    cwd: ROOT,
    env: { ...process.env, BENCH_CACHE: cache, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' },
    timeout: 180_000,
  });
  assert.match(stdout, /^machine: \d+ cores/m);
  assert.match(stdout, /^versions: emperor \S+ .*node v\d+/m);
  assert.match(stdout, /^NODE_EXTRA_CA_CERTS: unset for every process of every side$/m);
  assert.doesNotMatch(stdout, /FAILED/);
  const header = stdout.split('\n').find((l) => l.startsWith('| measure'));
  assert.ok(header, `no summary table in:\n${stdout}`);
  const columns = header.split('|').map((c) => c.trim());
  const row = stdout.split('\n').find((l) => l.startsWith('| touch -> new generation spawned'));
  assert.ok(row, `no reaction row in:\n${stdout}`);
  const emperor = row.split('|').map((c) => c.trim())[columns.indexOf('emperor')];
  assert.ok(Number.isFinite(Number(emperor)) && Number(emperor) > 0, `emperor cell: ${emperor}`);
  assert.match(stdout, /Run time: [\d.]+ min\./);
});
