// `emperor run` restarts its own Node once with the V8 flags that keep it small (execve: the pid,
// stdio and environment stay), however it was started; $EMPEROR_NODE_FLAGS replaces the flags.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type EmperorProcess,
  controlSocket,
  envOf,
  runCli,
  sleeper,
  startEmperor,
  tempDir,
} from './support.js';

// A developer's own setting would change what these tests expect.
delete process.env.EMPEROR_NODE_FLAGS;

/** docs/architecture.md, "Memory". */
const DEFAULT_NODE_FLAGS = ['--optimize-for-size', '--no-opt'];

const argvOf = (pid: number): string[] =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
const pidOf = (emp: EmperorProcess): number => emp.child.pid ?? assert.fail('no pid');
/** Node's own flags: what comes before the script. */
const nodeFlagsOf = (pid: number): string[] => {
  const argv = argvOf(pid);
  return argv.slice(
    1,
    argv.findIndex((a) => a.endsWith('emperor.js')),
  );
};

void test('the emperor restarts its Node with its flags, keeps its pid, its log and its vassals', async (t) => {
  const emp = await startEmperor(t, { files: { 'a.ini': sleeper(1) } });
  const spawned = await emp.waitLine((l) => l.event === 'spawn', 'a spawned');
  assert.deepEqual(nodeFlagsOf(pidOf(emp)), DEFAULT_NODE_FLAGS);
  // The pid a supervisor (systemd's MAINPID) knows is the daemon's, and it still writes to stdout.
  const status = await runCli(['status', '--json'], { control: controlSocket(emp) });
  assert.equal((JSON.parse(status.stdout) as { emperor: { pid: number } }).emperor.pid, emp.child.pid);
  assert.ok(emp.lines.some((l) => l.event === 'emperor-ready'));
  // A vassal's environment carries nothing of the restart.
  assert.deepEqual(
    Object.keys(envOf(spawned.pid as number)).filter((k) => k.startsWith('EMPEROR_NODE')),
    [],
  );
});

void test('$EMPEROR_NODE_FLAGS replaces the flags; empty, Node runs as started; a flag of the user is kept', async (t) => {
  const none = await startEmperor(t, { env: { EMPEROR_NODE_FLAGS: '' } });
  assert.deepEqual(nodeFlagsOf(pidOf(none)), []);
  const own = await startEmperor(t, { env: { EMPEROR_NODE_FLAGS: '--max-semi-space-size=2' } });
  assert.deepEqual(nodeFlagsOf(pidOf(own)), ['--max-semi-space-size=2']);
  // Started as `node --opt emperor.js run`: TurboFan stays on, the other default is added.
  const mine = await startEmperor(t, { prefix: ['/bin/sh', '-c', 'exec "$0" --opt "$@"'] });
  assert.deepEqual(nodeFlagsOf(pidOf(mine)), ['--optimize-for-size', '--opt']);
});

void test('a bad $EMPEROR_NODE_FLAGS stops the start with its code; a failed restart runs on and says so', async (t) => {
  const bad = await runCli(['run', '--vassals', tempDir(t), '--control', join(tempDir(t), 'c.sock')], {
    env: { EMPEROR_NODE_FLAGS: '--require /srv/x.js' },
  });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /EMPEROR_NODE_FLAGS: `\/srv\/x\.js` is not a flag.*\[EMP_NODE_FLAGS_INVALID\]/);
  // A Node whose own binary cannot be found again (a preload points execPath nowhere): execve fails.
  const preload = join(tempDir(t), 'lost.cjs');
  writeFileSync(preload, "process.execPath = '/no/such/node';\n");
  const lost = await startEmperor(t, { env: { NODE_OPTIONS: `--require ${preload}` } });
  const warned = lost.lines.find((l) => l.event === 'node-flags-not-applied');
  assert.equal(warned?.code, 'ENOENT');
  assert.deepEqual(nodeFlagsOf(pidOf(lost)), []);
});
