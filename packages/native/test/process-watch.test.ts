import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { watchProcessExit } from '../src/index.js';
import { spawnChild, waitFor } from './support.js';

/** Starts a `sleep` that is not our child: its shell parent exits at once, init adopts it. */
function startOrphan(): number {
  const r = spawnSync('/bin/sh', ['-c', 'sleep 60 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 0, `no pid from the shell: ${r.stdout} ${r.stderr}`);
  return pid;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

void test('a process that is not our child: its exit is seen on the event loop', async (t) => {
  const pid = startOrphan();
  t.after(() => {
    killQuietly(pid);
  });
  let gone = 0;
  const watch = watchProcessExit(pid, () => gone++);
  assert.ok(watch, 'the orphan runs, so it can be watched');
  t.after(() => {
    watch.close();
  });
  // Nothing fires while it runs (a level-triggered poll on a live pidfd is quiet).
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(gone, 0);
  process.kill(pid, 'SIGKILL');
  await waitFor(() => gone > 0, { timeout: 10_000, what: 'the exit of the watched orphan' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(gone, 1, 'the callback runs once');
});

void test('a process that exits but is never reaped (a zombie) counts as exited', async (t) => {
  // `sleep 60` (the exec'd shell) never waits for its child `sleep 0.3`, which stays a zombie.
  const parent = spawnChild(t, '/bin/sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 60'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  parent.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('\n'), { timeout: 10_000, what: 'the pid of the short sleep' });
  const pid = Number(out.trim());
  let gone = false;
  const watch = watchProcessExit(pid, () => (gone = true));
  assert.ok(watch, 'the short sleep runs (or is a zombie), so it can be watched');
  t.after(() => {
    watch.close();
  });
  await waitFor(() => gone, { timeout: 10_000, what: 'the exit of the short sleep' });
  assert.equal(readState(pid), 'Z', 'seen exited while still a zombie');
});

void test('no such process: null, not a watch', () => {
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid++;
  assert.equal(
    watchProcessExit(pid, () => assert.fail('never called')),
    null,
  );
});

void test('a closed watch never calls back', async (t) => {
  const pid = startOrphan();
  t.after(() => {
    killQuietly(pid);
  });
  let gone = 0;
  const watch = watchProcessExit(pid, () => gone++);
  assert.ok(watch);
  watch.close();
  watch.close(); // idempotent
  process.kill(pid, 'SIGKILL');
  await waitFor(() => readState(pid) === undefined || readState(pid) === 'Z', {
    timeout: 10_000,
    what: 'the orphan gone',
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(gone, 0);
});

/** The state letter of /proc/PID/stat (`Z` for a zombie), or undefined once it is gone. */
function readState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  } catch {
    return undefined;
  }
}
