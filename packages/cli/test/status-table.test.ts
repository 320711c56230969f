// The status table keeps to its width without cutting words in two: a value too long for a line
// is shortened with an ellipsis (the full text is in `--json` and `show`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatusSnapshot, VassalStatus } from '@emperor/daemon';
import { formatTable } from '../src/status-table.js';

const DEEP = `/srv/${'very-long-directory-name/'.repeat(5)}vassals`;

function vassal(over: Partial<VassalStatus>): VassalStatus {
  return {
    name: 'shop',
    file: `${DEEP}/shop.ini`,
    state: 'running',
    generation: 1,
    restarts: 0,
    sockets: [],
    sockets_open: false,
    instances: [],
    last_exit: null,
    last_stderr: [],
    backoff_until: null,
    error: null,
    errors: [],
    reason: null,
    retry_at: null,
    uptime_s: 1,
    processes: 1,
    quick_exits: 0,
    ...over,
  };
}

const snapshot = (vassals: VassalStatus[]): StatusSnapshot => ({
  emperor: { pid: 1, version: '0', uptime_s: 1, vassal_dirs: [DEEP] },
  vassals,
});

void test('long values are cut with an ellipsis, never wrapped mid-word, within 80 columns', () => {
  const lines = formatTable(
    snapshot([
      vassal({
        name: 'cron',
        state: 'failed',
        generation: 0,
        error: {
          code: 'EMP_CONFIG_UNKNOWN_KEY',
          file: `${DEEP}/cron.ini`,
          line: 3,
          key: 'procesess',
          message: 'unknown key `procesess`: did you mean `processes`?',
        },
      }),
      vassal({
        name: 'worker',
        state: 'backoff',
        restarts: 3,
        last_exit: { code: 1, signal: null, at: '2026-11-23T18:11:37.000Z' },
        last_stderr: [`Error: ENOENT: no such file or directory, open '${DEEP}/data/${'x'.repeat(60)}.json'`],
      }),
    ]),
    { color: false, width: 80, now: Date.parse('2026-11-23T18:11:38.000Z') },
  );
  for (const l of lines) assert.ok(l.length <= 80, `over 80 columns: ${l}`);
  const text = lines.join('\n');
  // Every word of the output is a whole word of the input, or ends (or starts) with the ellipsis.
  const words = new Set(
    [DEEP, 'cron.ini:3:', 'unknown', 'key', '`procesess`:', 'did', 'you', 'mean', '`processes`?'].flatMap(
      (w) => w.split(' '),
    ),
  );
  const errorLine = lines.filter((l) => l.includes('procesess') || l.includes('cron.ini'));
  for (const l of errorLine)
    for (const w of l.trim().split(/\s+/))
      assert.ok(words.has(w) || w.includes('…'), `a word cut without an ellipsis: \`${w}\` in ${text}`);
  assert.ok(text.includes('cron.ini:3:'), `the file name and line stay visible:\n${text}`);
  assert.ok(text.includes('did you mean `processes`?'), text);
  const stderr = lines.filter((l) => l.trimStart().startsWith('|'));
  assert.equal(stderr.length, 1, `one line per stderr line:\n${text}`);
  assert.ok(stderr[0]?.endsWith('…'), text);
});

void test('a failure with no exit since the vassal last ran shows no stderr of an older run', () => {
  const lines = formatTable(
    snapshot([
      vassal({
        name: 'api',
        state: 'failed',
        reason: 'program gunicron not found on PATH',
        last_exit: null,
        last_stderr: ['SyntaxError: an older run, fixed since'],
      }),
      vassal({
        name: 'worker',
        state: 'failed',
        reason: 'exited 5 times',
        last_exit: { code: 1, signal: null, at: '2026-11-23T18:11:37.000Z' },
        last_stderr: ['Error: cannot reach the database'],
      }),
    ]),
    { color: false, width: 80, now: Date.parse('2026-11-23T18:12:00.000Z') },
  );
  const text = lines.join('\n');
  assert.match(text, /failed: program gunicron not found on PATH/);
  assert.doesNotMatch(text, /SyntaxError/);
  assert.match(text, /\| Error: cannot reach the database/);
});

void test('recycle limits show before any recycle, so an operator sees they are in force', () => {
  const lines = formatTable(
    snapshot([vassal({ recycle_limits: { max_rss_bytes: 300 * 2 ** 20, max_lifetime_s: 3600 } })]),
    { color: false, width: 80, now: Date.now() },
  );
  assert.ok(lines.includes('  recycle at max-rss 300M, max-lifetime 1h00m: none yet'), lines.join('\n'));
});
