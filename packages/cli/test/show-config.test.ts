// `emperor show` prints the config in the file's own syntax: what it prints, read back as a vassal
// file, is the same config (so an operator can copy a line from `show` into a file).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseVassal } from '@emperor/config';
import { configLines } from '../src/show-config.js';

const FILE = `[vassal]
exec = sleep 100
socket = web=127.0.0.1:47123
socket = unix:/tmp/show-config.sock
socket-mode = 0640
umask = 027
max-rss = 200M
max-lifetime = 3600
log-max-size = 1536K
env = A=1
env = B=x y
touch-reload = /tmp/reload-me
attach-daemon = sleep 50
unique-cron = 5 * * * * echo hi
cron = -5 -1 -1 -1 -1 date
ready = delay:0.5
reload = signal:HUP
restart-delay = 0.25
`;

function parse(text: string): Record<string, unknown> {
  const r = parseVassal(text, { file: '/srv/v/app.ini', env: {}, cpus: 2 });
  assert.ok(r.ok, JSON.stringify(r));
  // As the daemon sends it: JSON, with `line` (where each value was read) dropped.
  return JSON.parse(JSON.stringify(r.config, (k, v: unknown) => (k === 'line' ? undefined : v))) as Record<
    string,
    unknown
  >;
}

void test('show prints keys as the file writes them: kebab names, seconds, sizes, octal modes', () => {
  const lines = configLines(parse(FILE));
  for (const expected of [
    'socket = web=127.0.0.1:47123',
    'socket-mode = 0640',
    'umask = 0027',
    'max-rss = 200M',
    'max-lifetime = 3600',
    'log-max-size = 1536K',
    'ready-timeout = 30',
    'restart-delay = 0.25',
    'ready = delay:0.5',
    'reload = signal:SIGHUP',
    'env = B=x y',
    'unique-cron = 5 * * * * echo hi',
    'clear-env = false',
  ])
    assert.ok(lines.includes(expected), `${expected} in:\n${lines.join('\n')}`);
  assert.ok(!lines.some((l) => /[A-Z][a-z]+ =|^(name|file|argv|shell) =/.test(l)), lines.join('\n'));
});

void test('what show prints reads back as the same config', () => {
  const first = parse(FILE);
  assert.deepEqual(parse(`[vassal]\n${configLines(first).join('\n')}\n`), first);
});
