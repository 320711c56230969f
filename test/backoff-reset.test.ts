// The restart backoff resets after 10 s of uptime (SPEC §4). Its own file: it needs a real 10 s
// run, and the test runner runs files side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, startEmperor, waitFor } from './support.js';

void test('backoff doubles on quick crashes and resets after 10 s up', async (t) => {
  const emp = await startEmperor(t);
  // Runs 0-2 crash at once, run 3 lives 10.5 s, runs 4 and later crash at once.
  emp.write(
    'phoenix.ini',
    `[vassal]\nexec = ${process.execPath} ${join(FIXTURES, 'crash-sequence.mjs')}\nenv = COUNTER_FILE=${join(emp.dir, 'runs')}\nenv = LIFETIMES_MS=0,0,0,10500,0\nrestart-delay = 0.1\nrestart-delay-max = 5\n`,
  );
  const delays = await waitFor(
    () => {
      const d = emp.lines.filter((l) => l.event === 'backoff').map((l) => l.delay_ms as number);
      return d.length >= 6 && d;
    },
    { what: 'six backoff lines', timeout: 40_000, seen: () => emp.lines.slice(-6) },
  );
  // 100, 200, 400 after the quick runs; run 3 lived 10.5 s, so back to 100 (not 800), then doubling.
  assert.deepEqual(delays.slice(0, 6), [100, 200, 400, 100, 200, 400]);
  const exits = emp.lines.filter((l) => l.event === 'exit' && l.vassal === 'phoenix');
  assert.ok((exits[3]?.uptime_ms as number) >= 10_000, 'run 3 was up for 10 s');
});
