// Vassal log files end to end: what `emperor logs` shows, and what a burst of output leaves in
// the file and in the emperor's memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, controlSocket, node, runCli, startEmperor, waitFor } from './support.js';

const MiB = 1024 * 1024;
const BURST = join(ROOT, 'bench', 'fixtures', 'log-burst.mjs');

function fileText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

void test('logs of a vassal that is gone: its log file is printed, and said to be gone', async (t) => {
  const emp = await startEmperor(t, {
    files: {
      'worker.ini': `[vassal]\nexec = sh -c 'echo hello from worker; echo line two; exec sleep 1000'\n`,
    },
  });
  const control = controlSocket(emp);
  const log = join(emp.logDir, 'worker.log');
  await waitFor(() => fileText(log).includes('line two\n'), { what: 'the worker wrote its lines' });
  rmSync(join(emp.vassals, 'worker.ini'));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'worker', 'worker removed');

  const r = await runCli(['logs', 'worker'], { control });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from worker\nline two\n');
  assert.match(r.stderr, /worker is gone .*end of its log .*worker\.log/);

  // -f prints it and ends: nothing will ever be written to it again.
  const f = await runCli(['logs', 'worker', '-f', '-n', '1'], { control });
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, 'line two\n');
  assert.match(f.stderr, /worker is gone/);

  // A vassal removed before this emperor started left its log at the default path.
  writeFileSync(join(emp.logDir, 'old.log'), 'from a previous emperor\n');
  const old = await runCli(['logs', 'old'], { control });
  assert.equal(old.code, 0, old.stderr);
  assert.equal(old.stdout, 'from a previous emperor\n');
  assert.match(old.stderr, /old is gone/);

  // No log file at all: still an unknown vassal.
  const none = await runCli(['logs', 'nothing'], { control });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no vassal matches `nothing`/);
});

void test('a 100 MiB burst to stdout reaches the log whole, and the memory it took is given back', async (t) => {
  const emp = await startEmperor(t);
  const pid = emp.child.pid ?? 0;
  const baseline = rssBytes(pid);
  const bytes = 100 * MiB;
  const from = emp.lines.length;
  emp.write('burst.ini', `[vassal]\nexec = ${node()} ${BURST} ${bytes}\nrestart = no\nlog-max-size = 0\n`);
  await emp.waitLine((l) => l.event === 'stopped' && l.vassal === 'burst', 'the burst ended', from);
  const log = join(emp.logDir, 'burst.log');
  await waitFor(() => statSync(log, { throwIfNoEntry: false })?.size === bytes, {
    what: `${bytes} bytes in the log`,
    seen: () => ({ size: statSync(log, { throwIfNoEntry: false })?.size, lines: emp.lines.slice(from) }),
  });
  assert.deepEqual(
    emp.lines.filter((l) => l.event === 'vassal-log-dropped'),
    [],
    'no output dropped on a disk that keeps up',
  );
  const { firstDifference } = (await import(BURST)) as {
    firstDifference: (path: string, bytes: number) => number;
  };
  assert.equal(firstDifference(log, bytes), -1, 'the log holds exactly what the app wrote');
  // Without the burst's buffers the emperor is back near where it started (it stayed 30-40 MiB up).
  await waitFor(() => rssBytes(pid) - baseline < 10 * MiB, {
    what: 'emperor RSS back within 10 MiB of its baseline',
    seen: () => ({ baselineMiB: baseline / MiB, nowMiB: rssBytes(pid) / MiB }),
  });
});
