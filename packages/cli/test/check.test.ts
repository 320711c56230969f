// `emperor check` through the real bin, on temp files: exit codes and exact output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/emperor.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'emp-cli-'));
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function emperor(...args: string[]): Run {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: tmp, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(path: string, text: string): void {
  mkdirSync(join(tmp, path, '..'), { recursive: true });
  writeFileSync(join(tmp, path), text);
}

write('ok/shop.ini', '[vassal]\nexec = node server.js\nsocket = :8080\n');
write('ok/api.ini', '[vassal]\nexec = node api.js\nsocket = 127.0.0.1:9090\nuser = root\n');
for (const ignored of [
  '.hidden.ini',
  'shop.ini~',
  'shop.ini.swp',
  '#shop.ini#',
  'notes.txt',
  'shop.ini.tmp',
]) {
  write(`ok/${ignored}`, 'not a vassal');
}
write('other/shop.ini', '[vassal]\nexec = node other.js\n');
write('clash/web.ini', '[vassal]\nexec = node web.js\nsocket = 0.0.0.0:9090\n');
write('bad.ini', '[vassal]\nexec = node "x\nprocesess = 4\nuser = no-such-user-emp\n');
write('warn.ini', '[vassal]\nexec = node a.js > log\n');

void test('valid files: exit 0 and one ok line per file', () => {
  const r = emperor('check', 'ok/shop.ini', 'ok/api.ini');
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'ok/shop.ini: ok\nok/api.ini: ok\n', '']);
});

void test('a directory means its vassal files, ignored names skipped', () => {
  const r = emperor('check', 'ok');
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'ok/api.ini: ok\nok/shop.ini: ok\n', '']);
});

void test('errors: exit 1, every error of the file with its line, then a summary with a code', () => {
  const r = emperor('check', 'bad.ini');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    [
      'bad.ini:2: error: invalid `exec` value `node "x`: unbalanced double quote at column 6 [EMP_CONFIG_EXEC_QUOTE]',
      'bad.ini:3: error: unknown key `procesess`: did you mean `processes`? [EMP_CONFIG_UNKNOWN_KEY]',
      'bad.ini:4: error: unknown user `no-such-user-emp`: the system has no such user (getent passwd no-such-user-emp) [EMP_CONFIG_UNKNOWN_USER]',
      'emperor: 3 errors in 1 of 1 path [EMP_CONFIG_INVALID]',
      '',
    ].join('\n'),
  );
});

void test('warnings are printed but do not fail the check', () => {
  const r = emperor('check', 'warn.ini');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'warn.ini: ok\n');
  assert.match(r.stderr, /^warn\.ini:2: warning: .*\[EMP_CONFIG_SHELL_SYNTAX\]\n$/);
});

void test('across files: a name given twice and two vassals on one TCP address', () => {
  const r = emperor('check', 'ok', 'other/shop.ini', 'clash');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'ok/api.ini: ok\nok/shop.ini: ok\n');
  assert.equal(
    r.stderr,
    [
      'other/shop.ini: error: vassal `shop` is also defined by ok/shop.ini; vassal names must be unique [EMP_VASSAL_DUPLICATE]',
      'clash/web.ini:3: error: socket `0.0.0.0:9090` overlaps `127.0.0.1:9090` of vassal `api` (ok/api.ini:3), which claimed it first; only one vassal can own an address [EMP_VASSAL_SOCKET_CONFLICT]',
      'emperor: 2 errors in 2 of 4 paths [EMP_CONFIG_INVALID]',
      '',
    ].join('\n'),
  );
});

void test('two vassals on one address: the file modified last is the newcomer, whatever the order given', () => {
  const now = Date.now() / 1000;
  write('age/b-old.ini', '[vassal]\nexec = node b.js\nsocket = 127.0.0.1:7070\nsocket = 127.0.0.1:7071\n');
  write('age/a-new.ini', '[vassal]\nexec = node a.js\nsocket = :7070\nsocket = 127.0.0.1:7072\n');
  write('age/c-later.ini', '[vassal]\nexec = node c.js\nsocket = 127.0.0.1:7072\n');
  utimesSync(join(tmp, 'age/b-old.ini'), now - 300, now - 300);
  utimesSync(join(tmp, 'age/a-new.ini'), now - 200, now - 200);
  utimesSync(join(tmp, 'age/c-later.ini'), now - 100, now - 100);
  const r = emperor('check', 'age');
  assert.equal(r.code, 1);
  // a-new is refused whole, as the emperor refuses it: its 7072 stays free for c-later.
  assert.equal(r.stdout, 'age/b-old.ini: ok\nage/c-later.ini: ok\n');
  assert.equal(
    r.stderr,
    [
      'age/a-new.ini:3: error: socket `:7070` overlaps `127.0.0.1:7070` of vassal `b-old` (age/b-old.ini:3), which claimed it first; only one vassal can own an address [EMP_VASSAL_SOCKET_CONFLICT]',
      'emperor: 1 error in 1 of 3 paths [EMP_CONFIG_INVALID]',
      '',
    ].join('\n'),
  );
});

void test('a directory without vassal files says so: a warning beside other files, an error alone', () => {
  write('empty/.keep', '');
  write('none/shop.conf', '[vassal]\nexec = node a.js\n');
  const alone = emperor('check', 'empty');
  assert.deepEqual(
    [alone.code, alone.stdout, alone.stderr],
    [
      1,
      '',
      'empty: error: no vassal file here: the emperor loads `NAME.ini` files, and it ignores the one other name here (`.keep`) [EMP_CONFIG_NO_VASSALS]\nemperor: 1 error in 1 of 1 path [EMP_CONFIG_INVALID]\n',
    ],
  );
  const beside = emperor('check', 'none', 'ok/shop.ini');
  assert.deepEqual(
    [beside.code, beside.stdout, beside.stderr],
    [
      0,
      'ok/shop.ini: ok\n',
      'none: warning: no vassal file here: the emperor loads `NAME.ini` files, and it ignores the one other name here (`shop.conf`) [EMP_CONFIG_NO_VASSALS]\n',
    ],
  );
});

void test('the same file named twice is checked once', () => {
  const r = emperor('check', 'ok/shop.ini', './ok/shop.ini', 'ok');
  assert.deepEqual([r.code, r.stdout], [0, 'ok/shop.ini: ok\nok/api.ini: ok\n']);
});

void test('missing files and directories given as files are errors naming the file', () => {
  const r = emperor('check', 'missing.ini');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^missing\.ini: error: no such file \[EMP_CONFIG_FILE_NOT_FOUND\]\n/);
});

void test('--json prints one object with every file', () => {
  const r = emperor('check', '--json', 'ok/shop.ini', 'bad.ini');
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as {
    ok: boolean;
    files: {
      file: string;
      name: string;
      ok: boolean;
      errors: { code: string; line: number | null }[];
      config: { sockets: unknown[] } | null;
    }[];
  };
  assert.equal(out.ok, false);
  assert.deepEqual(
    out.files.map((f) => [f.file, f.name, f.ok, f.errors.map((e) => [e.code, e.line])]),
    [
      ['ok/shop.ini', 'shop', true, []],
      [
        'bad.ini',
        'bad',
        false,
        [
          ['EMP_CONFIG_EXEC_QUOTE', 2],
          ['EMP_CONFIG_UNKNOWN_KEY', 3],
          ['EMP_CONFIG_UNKNOWN_USER', 4],
        ],
      ],
    ],
  );
  assert.equal(out.files[0]?.config?.sockets.length, 1);
  assert.equal(out.files[1]?.config, null);
});

void test('usage errors exit 2 with a one-line reason', () => {
  for (const args of [[], ['check'], ['chek', 'x'], ['check', '--nope', 'ok'], ['frobnicate']]) {
    const r = emperor(...args);
    assert.equal(r.code, 2, `emperor ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^emperor: .+\nRun `emperor --help`/, `emperor ${args.join(' ')}`);
    assert.equal(r.stdout, '');
  }
  assert.match(emperor('chek', 'x').stderr, /unknown command `chek`; did you mean `check`\?/);
});

void test('--help and --version', () => {
  const top = emperor('--help');
  assert.equal(top.code, 0);
  assert.match(top.stdout, /emperor check\s+Validate vassal files/);
  assert.match(top.stdout, /Exit codes: 0 success, 1 failure, 2 usage error, 3 daemon not reachable/);
  const sub = emperor('check', '--help');
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /emperor check <paths\.\.>/);
  assert.match(sub.stdout, /--json/);
  const v = emperor('--version');
  assert.deepEqual([v.code, v.stdout], [0, '0.1.0\n']);
});
