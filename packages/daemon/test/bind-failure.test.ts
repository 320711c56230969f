// `bind-failed` carries the errno code, and the vassal keeps it while it is `failed` because of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVassal, transition } from '../src/machine/transition.js';
import type { Vassal, VassalEvent } from '../src/machine/types.js';
import { testConfig } from './support/config.js';

const TCP = [
  {
    kind: 'tcp',
    name: undefined,
    host: '127.0.0.1',
    port: 8080,
    address: '127.0.0.1:8080',
    line: 3,
  } as const,
];

function send(v: Vassal, ...events: VassalEvent[]): Vassal {
  for (const e of events) v = transition(v, e).vassal;
  return v;
}

void test('a bind that failed with EADDRINUSE leaves the code in the state until the next start', () => {
  let v = send(createVassal(testConfig({ sockets: TCP })), { type: 'start', at: 0 });
  v = send(v, {
    type: 'bind-failed',
    reason: 'app.ini:3: cannot bind 127.0.0.1:8080: address already in use (EADDRINUSE)',
    code: 'EADDRINUSE',
    at: 1,
  });
  assert.equal(v.state, 'failed');
  assert.equal(v.bindFailure, 'EADDRINUSE');
  v = send(v, { type: 'timer', timer: { kind: 'retry' }, at: 2 });
  assert.equal(v.state, 'starting');
  assert.equal(v.bindFailure, undefined);
  v = send(v, { type: 'bound', at: 3 });
  assert.equal(v.bindFailure, undefined);
});

void test('a failure that is no bind failure carries no bind code, whatever its text says', () => {
  let v = send(createVassal(testConfig({ chdir: '/nonexistent/EADDRINUSE' })), { type: 'start', at: 0 });
  v = send(v, {
    type: 'spawn-failed',
    generation: 1,
    index: 0,
    reason: 'chdir /nonexistent/EADDRINUSE does not exist',
    at: 1,
  });
  v = send(v, { type: 'exited', pid: -1, code: null, signal: null, at: 2 });
  assert.equal(v.state, 'failed');
  assert.equal(v.bindFailure, undefined);
});
