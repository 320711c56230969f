// What follows when an app exits by itself or its file changes: `restart`, `reload = signal:`,
// and the vassal log's rotation, end to end with real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, alive, settleScans, spawnLines, startEmperor, waitFor, type LogLine } from './support.js';

const NODE = process.execPath;
const of =
  (event: string, name: string) =>
  (l: LogLine): boolean =>
    l.event === event && l.vassal === name;

function exitsWith(code: number, extra = ''): string {
  return `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'exits-after.mjs')}\nenv = EXIT_CODE=${code}\nenv = EXIT_AFTER_MS=50\nrestart-delay = 0.1\n${extra}`;
}

void test('reload = signal:SIGHUP: the app gets the signal and keeps its pid and generation', async (t) => {
  const emp = await startEmperor(t);
  // `version` changes the file but nothing passed at spawn: a change the app can apply itself.
  const plain = (v: number): string =>
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'reloads-on-sighup.mjs')}\nreload = signal:SIGHUP\nset-placeholder = version=${v}\n`;
  emp.write('hup.ini', plain(1));
  const spawned = await emp.waitLine(of('spawn', 'hup'), 'spawn');
  const pid = spawned.pid as number;
  const log = join(emp.logDir, 'hup.log');
  await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes(`up ${pid}`), { what: 'up' });

  let from = emp.lines.length;
  emp.write('hup.ini', plain(2));
  const reload = await emp.waitLine(of('reload', 'hup'), 'reload', from);
  assert.equal(reload.strategy, 'signal');
  await waitFor(() => readFileSync(log, 'utf8').includes(`got SIGHUP 1 in ${pid}`), { what: 'SIGHUP 1' });

  from = emp.lines.length;
  emp.write('hup.ini', plain(2)); // same content, new inode and mtime: a touch
  await emp.waitLine(of('reload', 'hup'), 'reload', from);
  await waitFor(() => readFileSync(log, 'utf8').includes(`got SIGHUP 2 in ${pid}`), { what: 'SIGHUP 2' });
  await settleScans(emp);
  assert.equal(spawnLines(emp.lines, 'hup').length, 1, 'no new process');
  assert.ok(alive(pid));
  assert.ok(
    emp.lines.filter(of('reload', 'hup')).every((l) => l.generation === 1),
    'the generation is kept',
  );

  // A change of what is passed at spawn (the environment) cannot go through a signal: a restart.
  from = emp.lines.length;
  emp.write('hup.ini', `${plain(2)}env = NEW=1\n`);
  const next = await emp.waitLine(of('spawn', 'hup'), 'respawn', from);
  assert.equal(next.generation, 2);
  await waitFor(() => !alive(pid), { what: 'the old process gone' });
});

void test('restart = no: an app that exits is stopped, whatever its status', async (t) => {
  const emp = await startEmperor(t);
  emp.write('once0.ini', exitsWith(0, 'restart = no\n'));
  emp.write('once1.ini', exitsWith(1, 'restart = no\n'));
  for (const name of ['once0', 'once1']) {
    const stopped = await emp.waitLine(of('stopped', name), `${name} stopped`);
    assert.equal(stopped.reason, 'exited, restart = no');
  }
  assert.equal(emp.lines.find(of('exit', 'once0'))?.code, 0);
  assert.equal(emp.lines.find(of('exit', 'once1'))?.code, 1);
  await settleScans(emp);
  for (const name of ['once0', 'once1']) {
    assert.equal(spawnLines(emp.lines, name).length, 1, `${name} ran once`);
    assert.ok(!emp.lines.some(of('backoff', name)), `${name} has no backoff`);
  }
  // The next change of the file starts it again.
  const from = emp.lines.length;
  emp.write('once0.ini', exitsWith(0, 'restart = no\nenv = AGAIN=1\n'));
  await emp.waitLine(of('spawn', 'once0'), 'started again by the edit', from);
});

void test('restart = on-failure: exit 0 is stopped, exit 1 is restarted', async (t) => {
  const emp = await startEmperor(t);
  emp.write('clean.ini', exitsWith(0, 'restart = on-failure\n'));
  emp.write('dirty.ini', exitsWith(1, 'restart = on-failure\n'));
  await emp.waitLine(of('stopped', 'clean'), 'clean stopped');
  const backoff = await emp.waitLine(of('backoff', 'dirty'), 'dirty backoff');
  assert.equal(backoff.delay_ms, 100);
  await waitFor(() => spawnLines(emp.lines, 'dirty').length >= 2, { what: 'dirty restarted' });
  assert.equal(spawnLines(emp.lines, 'dirty')[1]?.generation, 1, 'a restart keeps the generation');
  await settleScans(emp);
  assert.equal(spawnLines(emp.lines, 'clean').length, 1);
  assert.ok(!emp.lines.some(of('backoff', 'clean')));
});

void test('vassal log rotation end to end: log-max-size and log-backups, no line lost', async (t) => {
  const emp = await startEmperor(t);
  const LINES = 3000; // ~100 bytes each: ~300 KB through a 64 KiB log
  emp.write(
    'chatty.ini',
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'writes-lines.mjs')}\nenv = LINES=${LINES}\nlog-max-size = 64K\nlog-backups = 6\n`,
  );
  const log = join(emp.logDir, 'chatty.log');
  const files = [6, 5, 4, 3, 2, 1].map((n) => `${log}.${n}`).concat(log);
  const all = (): string =>
    files
      .filter(existsSync)
      .map((f) => readFileSync(f, 'utf8'))
      .join('');
  await waitFor(() => all().includes('done\n'), { what: 'the app done writing' });
  const text = all();
  const lines = text.split('\n').filter((l) => l !== '');
  assert.equal(lines.at(-1), 'done');
  assert.equal(lines.length, LINES + 1, 'every line, once');
  for (let i = 0; i < LINES; i++)
    assert.ok(lines[i]?.startsWith(`line ${String(i).padStart(6, '0')} `), `line ${i}`);
  // ~300 KB in 64 KiB files: at least four rotations, and no file over the limit (whole lines of
  // ~100 bytes end each file, so none goes past it by more than one line).
  for (const f of [`${log}.1`, `${log}.2`, `${log}.3`, `${log}.4`]) assert.ok(existsSync(f), `${f} exists`);
  for (const f of files.filter(existsSync)) {
    const size = statSync(f).size;
    assert.ok(size <= 64 * 1024 + 100, `${f}: ${size} bytes`);
    assert.ok(readFileSync(f, 'utf8').endsWith('\n'), `${f} ends with a whole line`);
  }
});

void test('log-backups bounds the files kept: the oldest output is dropped, the newest kept whole', async (t) => {
  const emp = await startEmperor(t);
  const LINES = 3000;
  emp.write(
    'bounded.ini',
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'writes-lines.mjs')}\nenv = LINES=${LINES}\nlog-max-size = 32K\nlog-backups = 2\n`,
  );
  const log = join(emp.logDir, 'bounded.log');
  await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('done\n'), { what: 'done' });
  assert.ok(existsSync(`${log}.1`) && existsSync(`${log}.2`));
  assert.ok(!existsSync(`${log}.3`), 'no third backup');
  const kept = [`${log}.2`, `${log}.1`, log].map((f) => readFileSync(f, 'utf8')).join('');
  const lines = kept.split('\n').filter((l) => l !== '');
  assert.equal(lines.at(-1), 'done');
  // The kept lines are the last ones, consecutive.
  const last = lines.slice(0, -1).map((l) => Number(l.slice(5, 11)));
  assert.equal(last.at(-1), LINES - 1);
  for (let i = 1; i < last.length; i++) assert.equal(last[i], (last[i - 1] ?? 0) + 1);
});
