// What `emperor status` and `emperor check` say about bad vassal files, end to end: every error
// of a file, a uWSGI file's hint, the real size of a huge file, and two vassals on one address
// (the one that claimed it first keeps it; the newcomer is told who holds it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  controlSocket,
  freePort,
  runCli,
  startEmperor,
  waitFor,
  type EmperorProcess,
  type LogLine,
} from './support.js';

interface ErrorJson {
  code: string;
  file: string;
  line: number | null;
  key: string | null;
  message: string;
}

interface VassalJson {
  name: string;
  state: string;
  instances: { pid: number | null }[];
  error: ErrorJson | null;
  errors: ErrorJson[];
}

async function vassals(emp: EmperorProcess): Promise<Map<string, VassalJson>> {
  const r = await runCli(['status', '--json'], { control: controlSocket(emp) });
  const parsed = JSON.parse(r.stdout) as { vassals: VassalJson[] };
  return new Map(parsed.vassals.map((v) => [v.name, v]));
}

/** The table with its wrapped lines joined again, so that a message reads in one piece. */
async function table(emp: EmperorProcess): Promise<string> {
  const r = await runCli(['status'], { control: controlSocket(emp) });
  return r.stdout.replace(/\s+/g, ' ');
}

const configErrors = (emp: EmperorProcess, name: string): LogLine[] =>
  emp.lines.filter((l) => l.event === 'config-error' && l.vassal === name);

void test('status shows every error of a file, and a huge file by its size', async (t) => {
  const emp = await startEmperor(t);
  // Three errors: an unbalanced quote, a misspelt key and a word that is not a restart policy.
  emp.write('many.ini', '[vassal]\nexec = node "x\nprocesess = 4\nrestart = sometimes\n');
  // Sparse: 50 MiB on paper, nothing on disk.
  writeFileSync(join(emp.dir, 'big.tmp'), '');
  truncateSync(join(emp.dir, 'big.tmp'), 50 * 2 ** 20);
  renameSync(join(emp.dir, 'big.tmp'), join(emp.vassals, 'big.ini'));

  const all = await waitFor(
    async () => {
      const v = await vassals(emp);
      return ['many', 'big'].every((n) => v.get(n)?.error) && configErrors(emp, 'many').length >= 3 && v;
    },
    { what: 'the two files reported' },
  );
  const many = all.get('many');
  assert.ok(many);
  const logged = configErrors(emp, 'many');
  assert.deepEqual(
    many.errors.map((e) => [e.code, e.line]),
    [
      ['EMP_CONFIG_EXEC_QUOTE', 2],
      ['EMP_CONFIG_UNKNOWN_KEY', 3],
      ['EMP_CONFIG_INVALID_VALUE', 4],
    ],
    'every error, as the log has them',
  );
  assert.deepEqual(
    many.errors.map((e) => e.line),
    logged.map((l) => l.line),
  );
  assert.deepEqual(many.error, many.errors[0], '`error` is the first of `errors`');
  assert.match(many.errors[2]?.message ?? '', /expected one of `always`/);

  const big = all.get('big');
  assert.equal(big?.error?.code, 'EMP_CONFIG_FILE_TOO_BIG');
  assert.match(big.error.message, /^the file is 50 MiB \(52428800 bytes\); /);

  const shown = await table(emp);
  for (const e of many.errors)
    assert.ok(shown.includes(e.message), `the table shows: ${e.message}\n${shown}`);
  assert.match(shown, /big\.ini: the file is 50 MiB \(52428800 bytes\)/);
});

const sleeper = (port: number): string => `[vassal]\nexec = /bin/sleep 1000\nsocket = 127.0.0.1:${port}\n`;
const runningOf = (name: string) => (l: LogLine) => l.event === 'running' && l.vassal === name;

/** A conflict reported for `newcomer`, naming `holder`, in the daemon's status and in `check`. */
async function assertBlamed(
  emp: EmperorProcess,
  dir: string,
  newcomer: string,
  holder: string,
): Promise<void> {
  const v = await waitFor(
    async () => {
      const all = await vassals(emp);
      return all.get(newcomer)?.error && all;
    },
    { what: `${newcomer}'s conflict in status` },
  );
  const error = v.get(newcomer)?.error;
  assert.equal(error?.code, 'EMP_VASSAL_SOCKET_CONFLICT', JSON.stringify(error));
  assert.match(error.message, new RegExp(`of vassal \`${holder}\` \\(${join(dir, `${holder}.ini`)}:3\\)`));
  assert.equal(error.line, 3);
  assert.equal(v.get(holder)?.state, 'running');
  assert.equal(v.get(holder)?.error, null);
  assert.ok(!emp.lines.some((l) => JSON.stringify(l).includes('EADDRINUSE')), 'no bind was tried');

  const check = await runCli(['check', dir]);
  assert.equal(check.code, 1);
  assert.equal(check.stdout, `${join(dir, `${holder}.ini`)}: ok\n`);
  assert.match(
    check.stderr,
    new RegExp(
      `^${join(dir, `${newcomer}.ini`)}:3: error: .*of vassal \`${holder}\`.*\\[EMP_VASSAL_SOCKET_CONFLICT\\]\n`,
    ),
  );
}

void test('a newcomer on a running vassal`s address gets EMP_VASSAL_SOCKET_CONFLICT, and starts once the address is free', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('web.ini', sleeper(port));
  const holder = await emp.waitLine(runningOf('web'), 'web running');
  // Named to sort first, so that neither the daemon nor `check` can be going by name.
  const from = emp.lines.length;
  emp.write('a-new.ini', sleeper(port));
  const logged = await emp.waitLine(
    (l) => l.event === 'config-error' && l.vassal === 'a-new',
    'the conflict logged',
    from,
  );
  assert.equal(logged.code, 'EMP_VASSAL_SOCKET_CONFLICT');
  await assertBlamed(emp, emp.vassals, 'a-new', 'web');
  const still = (await vassals(emp)).get('web');
  assert.deepEqual(
    still?.instances.map((i) => i.pid),
    [Number(holder.pids)],
    'the holder kept running, untouched',
  );

  rmSync(join(emp.vassals, 'web.ini'));
  await emp.waitLine(runningOf('a-new'), 'a-new running once web is gone', from);
  const after = await vassals(emp);
  assert.equal(after.get('a-new')?.error, null);
  assert.deepEqual(after.get('a-new')?.errors, []);
});

void test('two files on one address at start: the older file keeps it, in the daemon and in check', async (t) => {
  const port = await freePort();
  // Prepared before the emperor starts, so that both files come in its first scan.
  const dir = mkdtempSync('/tmp/emp-');
  const past = Date.now() / 1000 - 3600;
  // Named and written in the reverse order of their ages: neither name nor order of writing decides.
  writeFileSync(join(dir, 'aa-young.ini'), sleeper(port));
  writeFileSync(join(dir, 'zz-old.ini'), sleeper(port));
  utimesSync(join(dir, 'zz-old.ini'), past, past);
  utimesSync(join(dir, 'aa-young.ini'), past + 60, past + 60);
  const emp = await startEmperor(t, { args: ['--vassals', dir] });
  t.after(() => {
    rmSync(dir, { recursive: true, force: true }); // after the emperor's own hook has stopped it
  });
  await emp.waitLine(runningOf('zz-old'), 'zz-old running');
  await assertBlamed(emp, dir, 'aa-young', 'zz-old');
});

void test('a reload refused before anything stopped keeps its serving address claimed: a newcomer on it is told who holds it', async (t) => {
  const [port, next] = [await freePort(), await freePort()];
  const emp = await startEmperor(t);
  emp.write('web.ini', sleeper(port));
  await emp.waitLine(runningOf('web'), 'web running');
  // web's file moves to another port with a program that is not there: the reload is refused,
  // and the old version serves on, still bound to the first port.
  let from = emp.lines.length;
  emp.write('web.ini', sleeper(next).replace('/bin/sleep', '/nonexistent/sleep'));
  await emp.waitLine((l) => l.event === 'reload-failed' && l.vassal === 'web', 'reload refused', from);
  from = emp.lines.length;
  emp.write('late.ini', sleeper(port));
  const logged = await emp.waitLine(
    (l) => l.event === 'config-error' && l.vassal === 'late',
    'the conflict logged',
    from,
  );
  assert.equal(logged.code, 'EMP_VASSAL_SOCKET_CONFLICT');
  assert.match(String(logged.msg), /web/);
  assert.ok(
    !emp.lines.slice(from).some((l) => l.vassal === 'late' && l.event === 'failed'),
    'late never tried to bind an address web holds',
  );
});
