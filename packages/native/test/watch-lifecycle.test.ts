import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { exited, fixture, spawnChild } from './support.js';

function run(t: TestContext, mode: string): Promise<{ code: number | string; out: string }> {
  const child = spawnChild(t, process.execPath, [fixture('watch-lifecycle.mjs'), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // exited() resolving at all is the point for idle-after-close: a watch left active would keep
  // the child alive until the test's own timeout.
  return exited(child).then((code) => ({ code, out }));
}

void test('a closed watch does not keep the process alive', { timeout: 10_000 }, async (t) => {
  assert.deepEqual(await run(t, 'idle-after-close'), { code: 0, out: 'watch closed\n' });
});

void test(
  'an exception thrown by a watch callback reaches uncaughtException',
  { timeout: 10_000 },
  async (t) => {
    assert.deepEqual(await run(t, 'throw-in-callback'), {
      code: 7,
      out: 'uncaught: boom from the callback\n',
    });
  },
);
