import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { closeRawFd, openRawPipe, setPipeSize, trimMemory } from '../src/index.js';

void test('setPipeSize grows a pipe for a burst and shrinks it back; a non-pipe has no size', () => {
  const { readFd, writeFd } = openRawPipe();
  try {
    assert.equal(setPipeSize(readFd, 64 * 1024), 64 * 1024, 'the default capacity');
    // 1 MiB is the unprivileged maximum; a user over its pipe quota keeps the current size.
    const grown = setPipeSize(writeFd, 1024 * 1024);
    assert.ok(grown === 1024 * 1024 || grown === 64 * 1024, `grown to ${grown}`);
    assert.equal(setPipeSize(readFd, 64 * 1024), 64 * 1024, 'back to the default');
  } finally {
    closeRawFd(readFd);
    closeRawFd(writeFd);
  }
  const devNull = openSync('/dev/null', 'r');
  try {
    assert.equal(setPipeSize(devNull, 1024 * 1024), undefined);
  } finally {
    closeSync(devNull);
  }
});

void test('trimMemory returns whether glibc gave memory back, and never throws', () => {
  assert.equal(typeof trimMemory(), 'boolean');
});
