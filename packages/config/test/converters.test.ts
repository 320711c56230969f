// Table-driven tests: each converter with values it accepts (and what they become) and
// values it refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as c from '../src/converters.js';
import { cronLine } from '../src/cron.js';
import { socketAddress } from '../src/socket-address.js';
import { splitWords } from '../src/split-words.js';

const ctx: c.ConvertContext = { dir: '/srv/vassals', cpus: 8 };

function table<T>(
  name: string,
  convert: (v: string) => c.Converted<T>,
  good: [string, T][],
  bad: string[],
): void {
  void test(name, () => {
    for (const [input, expected] of good) {
      const r = convert(input);
      assert.ok(r.ok, `${name}(${JSON.stringify(input)}) should be accepted, got: ${r.ok ? '' : r.message}`);
      assert.deepEqual(r.value, expected, `${name}(${JSON.stringify(input)})`);
    }
    for (const input of bad) {
      const r = convert(input);
      assert.ok(
        !r.ok,
        `${name}(${JSON.stringify(input)}) should be refused, got ${JSON.stringify(r.ok && r.value)}`,
      );
      assert.match(r.message, /\S/, 'a refusal says what is valid');
    }
  });
}

table(
  'integer(1, 1024)',
  (v) => c.integer(1, 1024)(v, ctx),
  [
    ['1', 1],
    ['1024', 1024],
    ['007', 7],
  ],
  ['0', '1025', '-1', '1.5', '1e3', ' 1', '0x10', '', 'one', '99999999999999999999'],
);

table(
  'boolean',
  c.boolean,
  [
    ['true', true],
    ['TRUE', true],
    ['yes', true],
    ['on', true],
    ['1', true],
    ['false', false],
    ['No', false],
    ['off', false],
    ['0', false],
  ],
  ['', 'y', 'enabled', '2', 'truee'],
);

table(
  'size',
  (v) => c.size(1)(v, ctx),
  [
    ['512B', 512],
    ['512K', 512 * 1024],
    ['100M', 100 * 2 ** 20],
    ['2G', 2 * 2 ** 30],
    ['1.5g', 1.5 * 2 ** 30],
    ['10MB', 10 * 2 ** 20],
    ['4KiB', 4096],
    ['1T', 2 ** 40],
  ],
  // A bare number is bytes to Supervisor and MiB to uWSGI's reload-on-rss: it needs its unit.
  ['512', '1048576', '0', '-1M', '512X', 'M', '1.M', '1e9', '', '1 000', '99999999999T'],
);

table(
  'size(0)',
  (v) => c.size(0)(v, ctx),
  [
    ['0', 0],
    ['0K', 0],
    ['64K', 65536],
  ],
  ['1', '-1'],
);

void test('a bare size suggests its unit', () => {
  const r = c.size(1)('512', ctx);
  assert.ok(!r.ok);
  assert.match(r.message, /`512M` for 512 MiB .*`512B` for 512 bytes/);
});

table(
  'duration(0)',
  (v) => c.duration(0)(v, ctx),
  [
    ['0', 0],
    ['30', 30_000],
    ['0.5', 500],
    ['1.0005', 1001],
    ['2147483', 2_147_483_000],
  ],
  ['-1', '30s', '1m', '.5', '1.', '', '2147484', 'Infinity', 'NaN'],
);

table(
  'duration(1)',
  (v) => c.duration(1)(v, ctx),
  [
    ['0.001', 1],
    ['1', 1000],
  ],
  ['0', '0.0001'],
);

table(
  'signal',
  c.signal,
  [
    ['SIGTERM', 'SIGTERM'],
    ['TERM', 'SIGTERM'],
    ['sigterm', 'SIGTERM'],
    ['15', 'SIGTERM'],
    ['9', 'SIGKILL'],
    ['HUP', 'SIGHUP'],
    ['SIGUSR2', 'SIGUSR2'],
    ['6', 'SIGABRT'],
  ],
  ['', 'SIG', 'SIGFOO', '0', '99', '-15', 'SIGTERM ', '15.0'],
);

table(
  'octal mode',
  (v) => c.octal('mode')(v, ctx),
  [
    ['0660', 0o660],
    ['660', 0o660],
    ['022', 0o22],
    ['0777', 0o777],
  ],
  ['0999', '66', '06600', 'rw-rw----', '0o660', ''],
);

table(
  'processes',
  (v) => c.processes(v, ctx),
  [
    ['auto', 8],
    ['3', 3],
  ],
  ['AUTO', '0', '2000', 'many'],
);

table(
  'path',
  (v) => c.path(v, ctx),
  [
    ['/srv/app', '/srv/app'],
    ['app', '/srv/vassals/app'],
    ['../shared/env', '/srv/shared/env'],
    ['/srv//app/./x/', '/srv/app/x'],
  ],
  ['~/app', '~'],
);

table(
  'env',
  c.envAssignment,
  [
    ['A=1', { name: 'A', value: '1' }],
    ['_X=', { name: '_X', value: '' }],
    ['URL=a=b', { name: 'URL', value: 'a=b' }],
    ['COLOR=#f00', { name: 'COLOR', value: '#f00' }],
  ],
  ['=1', '1A=2', 'A-B=1', 'NOEQ', ' A=1'],
);

table(
  'ready',
  (v) => c.ready(v, ctx),
  [
    ['started', { kind: 'started' }],
    ['fd', { kind: 'fd' }],
    ['notify', { kind: 'notify' }],
    ['delay:2', { kind: 'delay', ms: 2000 }],
    ['delay:0.25', { kind: 'delay', ms: 250 }],
  ],
  ['delay:', 'delay:0', 'delay:-1', 'Notify', 'ready', 'delay 2'],
);

table(
  'reload',
  c.reload,
  [
    ['rolling', { kind: 'rolling' }],
    ['restart', { kind: 'restart' }],
    ['signal:SIGHUP', { kind: 'signal', signal: 'SIGHUP' }],
    ['signal:USR2', { kind: 'signal', signal: 'SIGUSR2' }],
    ['signal:1', { kind: 'signal', signal: 'SIGHUP' }],
  ],
  ['signal:', 'signal:NOPE', 'graceful', 'Rolling'],
);

table(
  'owner',
  c.owner,
  [
    ['www:www', { user: { name: 'www' }, group: { name: 'www' } }],
    ['www', { user: { name: 'www' }, group: undefined }],
    [':adm', { user: undefined, group: { name: 'adm' } }],
    ['33:33', { user: { id: 33 }, group: { id: 33 } }],
  ],
  [':', '', 'a b', '-1', 'a:b:c'],
);

table(
  'socket',
  (v) => socketAddress(v, ctx, 7),
  [
    [
      '127.0.0.1:8080',
      { kind: 'tcp', name: undefined, host: '127.0.0.1', port: 8080, address: '127.0.0.1:8080', line: 7 },
    ],
    [':80', { kind: 'tcp', name: undefined, host: '::', port: 80, address: ':80', line: 7 }],
    ['[::1]:8080', { kind: 'tcp', name: undefined, host: '::1', port: 8080, address: '[::1]:8080', line: 7 }],
    ['[::]:443', { kind: 'tcp', name: undefined, host: '::', port: 443, address: '[::]:443', line: 7 }],
    ['http=:8080', { kind: 'tcp', name: 'http', host: '::', port: 8080, address: ':8080', line: 7 }],
    [
      'unix:/run/app.sock',
      { kind: 'unix', name: undefined, path: '/run/app.sock', address: 'unix:/run/app.sock', line: 7 },
    ],
    [
      'unix:app.sock',
      { kind: 'unix', name: undefined, path: '/srv/vassals/app.sock', address: 'unix:app.sock', line: 7 },
    ],
    ['adm=unix:/run/a=b', { kind: 'unix', name: 'adm', path: '/run/a=b', address: 'unix:/run/a=b', line: 7 }],
    [
      `unix:/${'a'.repeat(106)}`,
      {
        kind: 'unix',
        name: undefined,
        path: `/${'a'.repeat(106)}`,
        address: `unix:/${'a'.repeat(106)}`,
        line: 7,
      },
    ],
  ],
  [
    '8080',
    ':0',
    ':65536',
    ':http',
    'localhost:80',
    '::1:80',
    '[::1]',
    '[127.0.0.1]:80',
    '256.0.0.1:80',
    'unix:',
    `unix:/${'a'.repeat(107)}`,
    'a:b=:80',
    'unix:~/x.sock',
    '=:80',
  ],
);

table(
  'exec words',
  splitWords,
  [
    ['node server.js', { argv: ['node', 'server.js'], shellSyntax: [] }],
    ['  node   a\tb  ', { argv: ['node', 'a', 'b'], shellSyntax: [] }],
    [`node "my app.js" 'x y'`, { argv: ['node', 'my app.js', 'x y'], shellSyntax: [] }],
    [`echo "a\\"b" 'c\\d'`, { argv: ['echo', 'a"b', 'c\\d'], shellSyntax: [] }],
    [`echo "\\n\\$"`, { argv: ['echo', '\\n$'], shellSyntax: [] }],
    ['echo a\\ b \\"q\\"', { argv: ['echo', 'a b', '"q"'], shellSyntax: [] }],
    [`echo '' ""`, { argv: ['echo', '', ''], shellSyntax: [] }],
    [`a"b"'c'd`, { argv: ['abcd'], shellSyntax: [] }],
    ['sh -c "cd /srv; ./run"', { argv: ['sh', '-c', 'cd /srv; ./run'], shellSyntax: [] }],
    ['node a.js | tee x', { argv: ['node', 'a.js', '|', 'tee', 'x'], shellSyntax: ['|'] }],
  ],
  [`"unclosed`, `'unclosed`, 'trailing\\', '', '   ', `"a\\"`],
);

void test('cron lines', () => {
  const every5 = cronLine('*/5 * * * * job');
  assert.ok(every5.ok);
  assert.deepEqual(every5.value.minute, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]);
  assert.equal(every5.value.command, 'job');
  const uwsgi = cronLine('-5 -1 -1 -1 -1 job');
  assert.ok(uwsgi.ok);
  assert.deepEqual(uwsgi.value.minute, every5.value.minute, 'uWSGI -5 is crontab */5');
  assert.equal(uwsgi.value.hour.length, 24);
  const lists = cronLine('0,30 8-18/2 1,15 jan,jul mon-fri run the  job');
  assert.ok(lists.ok);
  assert.deepEqual(lists.value.hour, [8, 10, 12, 14, 16, 18]);
  assert.deepEqual(lists.value.month, [1, 7]);
  assert.deepEqual(lists.value.weekday, [1, 2, 3, 4, 5]);
  assert.equal(lists.value.dayOrWeekday, true);
  assert.equal(lists.value.command, 'run the  job', 'the command is kept verbatim');
  const sunday = cronLine('0 0 * * 7 x');
  assert.ok(sunday.ok);
  assert.deepEqual(sunday.value.weekday, [0], '7 is Sunday');
  const daily = cronLine('@daily x');
  assert.ok(daily.ok);
  assert.deepEqual([daily.value.minute, daily.value.hour], [[0], [0]]);
  for (const bad of [
    '* * * * *',
    '60 * * * * x',
    '* 24 * * * x',
    '* * 0 * * x',
    '* * * 13 * x',
    '* * * * 8 x',
    '*/0 * * * * x',
    '5-1 * * * * x',
    '-0 * * * * x',
    '@reboot x',
    '@daily',
    'a b c d e f',
  ]) {
    assert.ok(!cronLine(bad).ok, `cron ${JSON.stringify(bad)} should be refused`);
  }
});

void test('nodes: a class with a backwards range is an error naming the glob, not a thrown RegExp', () => {
  const r = c.nodeGlobs('web-* db-[12eb-*]');
  assert.ok(
    !r.ok && /`db-\[12eb-\*\]` has a class whose range runs backwards/.test(r.message),
    JSON.stringify(r),
  );
  const ok = c.nodeGlobs('web-[0-9] a^b');
  assert.ok(ok.ok, JSON.stringify(ok));
});
