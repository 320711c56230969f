// `emperor run` after it has stopped every vassal: the process exits then, whatever the vassals
// left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, startEmperor, tempDir, waitFor } from './support.js';

void test('the emperor exits once stopped, and a process that left a vassal group to hold its output is gone too', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'escaped.pid');
  const script = join(dir, 'escapes.sh');
  // A helper in a session of its own (as a daemonizing child does): the stop signal, sent to the
  // vassal's main process, does not reach it, and it keeps the vassal's stdout and stderr until
  // containment (its cgroup, or the subreaper) kills it.
  writeFileSync(script, `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 600' &\nexec sleep 1000\n`);
  const emp = await startEmperor(t, { files: { 'esc.ini': `[vassal]\nexec = sh ${script}\n` } });
  const escaped = await waitFor(() => Number(readFileSync(pidFile, 'utf8')) || undefined, {
    what: 'the helper that left the group',
  });
  t.after(() => {
    try {
      process.kill(escaped, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  const from = emp.lines.length;
  emp.child.kill('SIGTERM');
  await emp.waitLine((l) => l.event === 'emperor-stopped', 'emperor-stopped', from);
  const exit = await waitFor(
    () => (emp.child.exitCode !== null || emp.child.signalCode !== null) && { code: emp.child.exitCode },
    { what: 'the emperor to exit after emperor-stopped' },
  );
  assert.equal(exit.code, 0);
  assert.ok(!alive(escaped), 'the helper was stopped with its vassal');
});
