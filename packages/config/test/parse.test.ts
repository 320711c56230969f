// Behaviours of parseVassal and readVassalFile that golden files cannot show well.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import {
  ERROR_CODES,
  formatIssue,
  MAX_FILE_BYTES,
  parseVassal,
  parseVassalBytes,
  readVassalFile,
  vassalNameOf,
  type ParseResult,
} from '../src/index.js';
import { goldenOptions } from './golden-options.js';

function codes(r: ParseResult): string[] {
  return r.ok ? [] : r.errors.map((e) => e.code);
}

void test('vassalNameOf accepts NAME.ini and ignores the rest', () => {
  const accepted: [string, string][] = [
    ['shop.ini', 'shop'],
    ['my-app_2.v1.ini', 'my-app_2.v1'],
    ['A.ini', 'A'],
  ];
  for (const [file, name] of accepted) assert.equal(vassalNameOf(file), name, file);
  const ignored = [
    '.shop.ini',
    'shop.ini~',
    'shop.ini.swp',
    '.shop.ini.swp',
    'shop.ini.swx',
    '#shop.ini#',
    'shop.ini.tmp',
    'shop.tmp',
    'shop.conf',
    'shop',
    '.ini',
    'my app.ini',
    'caf\u00e9.ini',
    'shop.INI',
    'a/b.ini',
    '',
  ];
  for (const file of ignored) assert.equal(vassalNameOf(file), undefined, file);
});

void test('defaults follow SPEC §3', () => {
  const r = parseVassal('[vassal]\nexec = node a.js\n', goldenOptions('shop.ini'));
  assert.ok(r.ok);
  const c = r.config;
  assert.equal(c.name, 'shop');
  assert.equal(c.chdir, '/srv/vassals');
  assert.deepEqual(
    [
      c.processes,
      c.backlog,
      c.socketMode,
      c.umask,
      c.readyTimeoutMs,
      c.stopTimeoutMs,
      c.restartDelayMs,
      c.restartDelayMaxMs,
    ],
    [1, 1024, 0o660, 0o022, 30_000, 30_000, 1000, 60_000],
  );
  assert.deepEqual(
    [c.stopSignal, c.restart, c.ready, c.reload],
    ['SIGTERM', 'always', { kind: 'started' }, { kind: 'restart' }],
  );
  assert.deepEqual(
    [c.logMaxSizeBytes, c.logBackups, c.logTimestamps, c.log],
    [10 * 2 ** 20, 5, false, undefined],
  );
  const withSocket = parseVassal('[vassal]\nexec = node a.js\nsocket = :8080\n', goldenOptions('shop.ini'));
  assert.ok(withSocket.ok);
  assert.deepEqual(withSocket.config.reload, { kind: 'rolling' }, 'rolling is the default with sockets');
});

void test('retire-nice defaults to 0 and warns when the vassal does not reload by rolling', () => {
  const parse = (body: string) =>
    parseVassal(`[vassal]\nexec = node a.js\n${body}`, goldenOptions('shop.ini'));
  const none = parse('socket = :8080\n');
  assert.ok(none.ok);
  assert.equal(none.config.retireNice, 0);
  const set = parse('socket = :8080\nretire-nice = 10\n');
  assert.ok(set.ok);
  assert.equal(set.config.retireNice, 10);
  const unused = parse('retire-nice = 10\n');
  assert.ok(unused.ok);
  assert.deepEqual(
    unused.warnings.map((w) => [w.code, w.line, w.key]),
    [['EMP_CONFIG_UNUSED_KEY', 3, 'retire-nice']],
  );
  assert.deepEqual(codes(parse('socket = :8080\nretire-nice = 20\n')), ['EMP_CONFIG_INVALID_VALUE']);
});

void test('the config is deeply frozen', () => {
  const r = parseVassal('[vassal]\nexec = node a.js\nenv = A=1\nsocket = :1\n', goldenOptions('shop.ini'));
  assert.ok(r.ok);
  assert.throws(() => {
    (r.config.env as Record<string, string>)['B'] = '2';
  }, TypeError);
  assert.ok(Object.isFrozen(r.config.sockets[0]));
});

void test('a file name the emperor ignores is an error', () => {
  const r = parseVassal('[vassal]\nexec = x\n', goldenOptions('shop.conf'));
  assert.deepEqual(codes(r), ['EMP_CONFIG_FILE_NAME']);
});

void test('every error of a file comes out in one pass, sorted by line', () => {
  const r = parseVassal(
    '[vassal]\nprocesses = x\nfoo = 1\nexec = "a\nbacklog = 0\n',
    goldenOptions('shop.ini'),
  );
  assert.deepEqual(codes(r), [
    'EMP_CONFIG_INVALID_VALUE',
    'EMP_CONFIG_UNKNOWN_KEY',
    'EMP_CONFIG_EXEC_QUOTE',
    'EMP_CONFIG_INVALID_VALUE',
  ]);
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.key]),
    [
      [2, 'processes'],
      [3, 'foo'],
      [4, 'exec'],
      [5, 'backlog'],
    ],
  );
});

void test('users and groups: names need the lookup, numeric ids do not', () => {
  const noLookup = { file: '/srv/vassals/a.ini', env: {}, cpus: 1 };
  const named = parseVassal('[vassal]\nexec = x\nuser = www-data\n', noLookup);
  assert.deepEqual(codes(named), ['EMP_CONFIG_UNKNOWN_USER']);
  const numeric = parseVassal('[vassal]\nexec = x\nuser = 33\ngroup = 33\n', noLookup);
  assert.ok(numeric.ok);
  assert.deepEqual(numeric.config.user, { name: '33', uid: 33, gid: 33 });
});

void test('formatIssue: FILE:LINE: severity: message [CODE]', () => {
  const r = parseVassal('[vassal]\nexec = x\nprocesess = 4\n', goldenOptions('shop.ini'));
  assert.ok(!r.ok);
  assert.equal(
    formatIssue(r.errors[0] ?? assert.fail()),
    '/srv/vassals/shop.ini:3: error: unknown key `procesess`: did you mean `processes`? [EMP_CONFIG_UNKNOWN_KEY]',
  );
  const missing = parseVassal('[vassal]\n', goldenOptions('shop.ini'));
  assert.ok(!missing.ok);
  assert.match(
    formatIssue(missing.errors[0] ?? assert.fail()),
    /^\/srv\/vassals\/shop\.ini: error: missing `exec`/,
  );
});

void test('the registry: EMP_ codes, each with a one-line description', () => {
  for (const [code, description] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^EMP_[A-Z]+(_[A-Z0-9]+)+$/);
    assert.match(description, /^[A-Z`].*\.$/, code);
    assert.ok(!description.includes('\n'), code);
  }
});

void test('a placeholder chain cannot grow without bound', () => {
  const lines = ['[vassal]', 'set-placeholder = p0=xxxxxxxxxxxxxxxx'];
  for (let i = 1; i < 40; i++) lines.push(`set-placeholder = p${i}=%(p${i - 1})%(p${i - 1})`);
  lines.push('exec = echo %(p39)');
  const r = parseVassal(lines.join('\n'), goldenOptions('shop.ini'));
  assert.ok(codes(r).includes('EMP_CONFIG_VALUE_TOO_LONG'));
  const deep = ['[vassal]', 'set-placeholder = q0=x'];
  for (let i = 1; i < 5000; i++) deep.push(`set-placeholder = q${i}=%(q${i - 1})`);
  deep.push('exec = echo %(q4999)');
  const d = parseVassal(deep.join('\n'), goldenOptions('shop.ini'));
  assert.ok(codes(d).includes('EMP_CONFIG_VALUE_TOO_LONG'), 'deep nesting is an error, not a stack overflow');
});

void test('parseVassalBytes: size, NUL, UTF-8 and BOM', () => {
  const opts = goldenOptions('shop.ini');
  assert.deepEqual(codes(parseVassalBytes(new Uint8Array(MAX_FILE_BYTES + 1).fill(0x20), opts)), [
    'EMP_CONFIG_FILE_TOO_BIG',
  ]);
  // A reader stops at the limit: the size its stat saw is the one to report, not the bytes read.
  const big = parseVassalBytes(new Uint8Array(MAX_FILE_BYTES + 1).fill(0x20), opts, 50 * 2 ** 20);
  assert.ok(!big.ok);
  assert.equal(
    big.errors[0]?.message,
    'the file is 50 MiB (52428800 bytes); a vassal file is at most 1 MiB (1048576 bytes)',
  );
  assert.deepEqual(codes(parseVassalBytes(Buffer.from('[vassal]\nexec = a\0'), opts)), ['EMP_CONFIG_BINARY']);
  const bad = parseVassalBytes(
    Buffer.from([...Buffer.from('[vassal]\nexec = a\nenv = A='), 0xc3, 0x28]),
    opts,
  );
  assert.ok(!bad.ok);
  assert.deepEqual([bad.errors[0]?.code, bad.errors[0]?.line], ['EMP_CONFIG_ENCODING', 3]);
  const bom = parseVassalBytes(Buffer.from('\ufeff[vassal]\r\nexec = a\r\n'), opts);
  assert.ok(bom.ok);
  assert.equal(bom.config.exec, 'a');
});

const tmp = mkdtempSync(join(tmpdir(), 'emp-cfg-'));
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});
const env = { env: {}, cpus: 2 };

void test('readVassalFile: reads, returns the bytes, resolves relative to the file', async () => {
  const file = join(tmp, 'shop.ini');
  writeFileSync(file, '[vassal]\nexec = node a.js\nlog = logs/%n.log\n');
  const r = await readVassalFile(file, env);
  assert.ok(r.ok);
  assert.equal(r.config.file, file);
  assert.equal(r.config.chdir, tmp);
  assert.equal(r.config.log, join(tmp, 'logs/shop.log'));
  assert.equal(Buffer.from(r.bytes ?? []).toString(), '[vassal]\nexec = node a.js\nlog = logs/%n.log\n');
});

void test('readVassalFile: file-level problems name the file, with no line', async () => {
  const dir = join(tmp, 'dir.ini');
  mkdirSync(dir);
  const big = join(tmp, 'big.ini');
  writeFileSync(big, Buffer.alloc(MAX_FILE_BYTES + 10, 0x20));
  const fifo = join(tmp, 'fifo.ini');
  execFileSync('mkfifo', [fifo]);
  const cases: [string, string][] = [
    [join(tmp, 'missing.ini'), 'EMP_CONFIG_FILE_NOT_FOUND'],
    [dir, 'EMP_CONFIG_NOT_A_FILE'],
    [big, 'EMP_CONFIG_FILE_TOO_BIG'],
    [fifo, 'EMP_CONFIG_NOT_A_FILE'],
  ];
  if (process.getuid?.() !== 0) {
    const locked = join(tmp, 'locked.ini');
    writeFileSync(locked, '[vassal]\nexec = a\n');
    chmodSync(locked, 0);
    cases.push([locked, 'EMP_CONFIG_FILE_UNREADABLE']);
  }
  for (const [path, code] of cases) {
    const r = await readVassalFile(path, env);
    assert.ok(!r.ok, path);
    assert.deepEqual(
      [r.errors[0]?.code, r.errors[0]?.line, r.errors[0]?.file, r.bytes],
      [code, undefined, path, undefined],
      path,
    );
  }
});

void test('a 1 MiB file of repeated lines parses in linear time', () => {
  // Each shape once took minutes through a quadratic list copy or pairwise socket check.
  const shapes = [
    (i: number) => `env = A${i}=1`,
    (i: number) => `unknown${i % 7} = 1`,
    (i: number) => `socket = 127.0.${i >> 8}.${i & 255}:80`,
    (i: number) => `touch-reload = f${i}`,
  ];
  for (const shape of shapes) {
    const lines = ['[vassal]', 'exec = x'];
    for (let i = 0, size = 0; size < MAX_FILE_BYTES - 100; i++) {
      const line = shape(i);
      lines.push(line);
      size += line.length + 1;
    }
    const started = performance.now();
    const r = parseVassal(lines.join('\n'), goldenOptions('shop.ini'));
    const ms = performance.now() - started;
    assert.equal(typeof r.ok, 'boolean');
    // Linear takes ~0.1 s here, quadratic took minutes: a bound between the two with room for a
    // machine at load 10 (5 s failed there once).
    assert.ok(ms < 30_000, `${shape(0)} x ${lines.length}: ${Math.round(ms)} ms`);
  }
});

void test('text without a file: the origin names the vassal and every issue; %d and chdir are /', () => {
  const origin = 'etcd://127.0.0.1:2379/apps/vassals/shop';
  const good = parseVassal('[vassal]\nexec = /bin/app %n %p %d\nenv-file = app.env\n', {
    ...goldenOptions('shop.ini'),
    file: origin,
    origin: { name: 'shop', dir: '/' },
  });
  assert.ok(good.ok);
  assert.equal(good.config.name, 'shop');
  assert.equal(good.config.file, origin);
  assert.equal(good.config.chdir, '/');
  assert.deepEqual(good.config.argv, ['/bin/app', 'shop', origin, '/']);
  assert.deepEqual(good.config.envFiles, ['/app.env']);
  const bad = parseVassal('[vassal]\nexec = /bin/app\nprocesses = many\n', {
    ...goldenOptions('shop.ini'),
    file: origin,
    origin: { name: 'shop', dir: '/' },
  });
  assert.ok(!bad.ok);
  assert.match(
    bad.errors.map(formatIssue).join('\n'),
    /^etcd:\/\/127\.0\.0\.1:2379\/apps\/vassals\/shop:3: error: invalid `processes`/,
  );
  const uwsgi = parseVassal('[uwsgi]\nhttp-socket = :8080\n', {
    ...goldenOptions('shop.ini'),
    file: origin,
    origin: { name: 'shop', dir: '/' },
  });
  assert.ok(!uwsgi.ok);
  assert.match(uwsgi.errors.map((e) => e.message).join('\n'), /vassal directory/);
});
