import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FdBudget, countOpenFds, readNofileLimit } from '../src/os/fd-budget.js';

void describe('FdBudget', () => {
  void it('keeps an eighth of a low limit (at least 4 connections, plus 8) for the control socket', () => {
    assert.deepEqual([new FdBudget(64).controlConnections, new FdBudget(64).reserve], [8, 16]);
    assert.deepEqual([new FdBudget(16).controlConnections, new FdBudget(16).reserve], [4, 12]);
    assert.deepEqual(
      [new FdBudget(1_048_576).controlConnections, new FdBudget(1_048_576).reserve],
      [256, 264],
    );
  });

  void it('refuses a spawn that would eat into the reserve, saying what to raise', () => {
    const budget = new FdBudget(64);
    assert.equal(budget.spawnShortage(40), undefined, '40 open + 8 for the spawn = 48 = 64 - 16');
    assert.match(
      budget.spawnShortage(41) ?? '',
      /^too many open files: the emperor has 41 of its 64 file descriptors open and keeps 16 for the control socket; raise its limit \(`LimitNOFILE=`/,
    );
  });

  void it('does not count control connections against the vassals', () => {
    const budget = new FdBudget(64);
    budget.openControl = 6;
    assert.equal(budget.spawnShortage(46), undefined);
    assert.notEqual(budget.spawnShortage(47), undefined);
  });

  void it('reads the limit and counts open fds of this process', () => {
    assert.ok(readNofileLimit() > 0);
    const before = countOpenFds();
    const fd = openSync('/dev/null', 'r');
    try {
      assert.equal(countOpenFds(), before + 1);
    } finally {
      closeSync(fd);
    }
  });
});
