import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SpawnGate } from '../src/runner/spawn-gate.js';

void test('the gate runs a bounded burst now and the rest on later turns, in order', async () => {
  const gate = new SpawnGate(4);
  const ran: number[] = [];
  for (let i = 0; i < 10; i++)
    gate.run(() => {
      ran.push(i);
    });
  assert.deepEqual(ran, [0, 1, 2, 3], 'four now');
  assert.equal(gate.pending, 6);
  await nextTurn();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7], 'four more on the next turn');
  await nextTurn();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(gate.pending, 0);
  await nextTurn();
  gate.run(() => ran.push(10));
  assert.equal(ran.at(-1), 10, 'a quiet gate runs at once');
});
