// Which V8 flags `emperor run` adds to its Node: its own list or $EMPEROR_NODE_FLAGS, never one
// whose setting the user already gave (either way round) on Node's command line or in NODE_OPTIONS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_NODE_FLAGS, missingNodeFlags, wantedNodeFlags } from '../src/node-flags.js';

void test('the defaults, unless $EMPEROR_NODE_FLAGS replaces them (empty: none)', () => {
  assert.deepEqual(wantedNodeFlags({}), DEFAULT_NODE_FLAGS);
  assert.deepEqual(wantedNodeFlags({ EMPEROR_NODE_FLAGS: '' }), []);
  assert.deepEqual(wantedNodeFlags({ EMPEROR_NODE_FLAGS: ' --no-opt   --max-semi-space-size=2 ' }), [
    '--no-opt',
    '--max-semi-space-size=2',
  ]);
});

void test('a word of $EMPEROR_NODE_FLAGS that is not a whole flag is refused, naming it', () => {
  for (const bad of ['--require /srv/x.js', 'optimize-for-size', '--no-opt -', '--'])
    assert.throws(
      () => wantedNodeFlags({ EMPEROR_NODE_FLAGS: bad }),
      (e: Error & { code?: string }) =>
        e.code === 'EMP_NODE_FLAGS_INVALID' && e.message.startsWith('EMPEROR_NODE_FLAGS: `'),
      bad,
    );
  assert.deepEqual(wantedNodeFlags({ EMPEROR_NODE_FLAGS: '--require=/srv/x.js' }), ['--require=/srv/x.js']);
});

void test('a flag is added only when its setting is not named already', () => {
  const wanted = ['--optimize-for-size', '--no-opt', '--max-semi-space-size=1'];
  assert.deepEqual(missingNodeFlags(wanted, []), wanted);
  // Already there, as Node was restarted with them: nothing to do (no second exec).
  assert.deepEqual(missingNodeFlags(wanted, wanted), []);
  // The user's choice wins, whatever its spelling: --opt is --turbofan, _ is -, --no- negates.
  assert.deepEqual(missingNodeFlags(wanted, ['--opt']), ['--optimize-for-size', '--max-semi-space-size=1']);
  assert.deepEqual(missingNodeFlags(wanted, ['--turbofan', '--max_semi_space_size=16']), [
    '--optimize-for-size',
  ]);
  assert.deepEqual(
    missingNodeFlags(wanted, ['--no-optimize-for-size'], '--max-semi-space-size=16 --inspect'),
    ['--no-opt'],
  );
  // Arguments that are not flags do not count.
  assert.deepEqual(missingNodeFlags(['--no-opt'], ['--require', 'opt']), ['--no-opt']);
});
