import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Readable } from 'node:stream';
import { heartbeat, notifyFd, ready, status } from '../src/index.js';
import { childEnv, exited, fixture, lines, spawnChild, waitFor } from './support.js';

void test('ready, status and heartbeat write one line each on EMPEROR_NOTIFY_FD', async (t) => {
  const child = spawnChild(t, process.execPath, [fixture('notify-messages.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    env: childEnv({ EMPEROR_NOTIFY_FD: '3' }),
  });
  const out = lines(child.stdout);
  const channel = lines(child.stdio[3] as Readable);
  assert.equal((await exited(child)).code, 0);
  await waitFor(() => channel.length >= 5, { what: 'five messages' });
  assert.deepEqual(JSON.parse(out[0] ?? 'null'), [true, true, true, true]);
  // A newline in a status would end the message early (an empty line even means READY).
  assert.deepEqual(channel, ['STATUS=loading cache', 'STATUS=serving', 'READY=1', 'WATCHDOG=1', 'READY=1']);
});

void test('without a channel, or with a dead one, the calls are no-ops that return false', () => {
  assert.equal(ready(undefined, {}), false);
  assert.equal(status('x', {}), false);
  assert.equal(heartbeat({}), false);
  assert.equal(notifyFd({ EMPEROR_NOTIFY_FD: '2' }), undefined, 'stdio is never the channel');
  assert.equal(notifyFd({ EMPEROR_NOTIFY_FD: 'four' }), undefined);
  // An fd number nothing is open on: EBADF is swallowed, never thrown at the app.
  assert.equal(ready(undefined, { EMPEROR_NOTIFY_FD: '1000' }), false);
});
