// What a reload that cannot start leaves behind, and what `status` says while a vassal's sockets
// are closed or its instances are still stopping: a real emperor, real files and processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES,
  alive,
  controlSocket,
  freePort,
  getJson,
  killGroupQuietly,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type CliResult,
} from './support.js';

const NODE = process.execPath;

interface VassalJson {
  name: string;
  state: string;
  generation: number;
  reason: string | null;
  sockets: string[];
  sockets_open: boolean;
  instances: { pid: number | null; state: string }[];
}

async function vassals(control: string): Promise<VassalJson[]> {
  const r = await runCli(['status', '--json'], { control });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { vassals: VassalJson[] }).vassals;
}

async function vassal(control: string, name: string): Promise<VassalJson | undefined> {
  return (await vassals(control)).find((v) => v.name === name);
}

function expectCode(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** An app on an owned socket (rolling reloads), ready once it listens. */
function socketVassal(port: number, exec = `${NODE} ${join(FIXTURES, 'socket-app.mjs')}`): string {
  return `[vassal]\nexec = ${exec}\nsocket = 127.0.0.1:${port}\nready = fd\nstop-timeout = 5\n`;
}

void test('a reload that cannot start: --wait exits 1 with the reason, the error stays, and a later reload applies the file as it is then', async (t) => {
  const port = await freePort();
  // A directory on the emperor's PATH where the misspelt program can be installed later.
  const bin = join(tempDir(t), 'bin');
  mkdirSync(bin);
  const emp = await startEmperor(t, {
    files: { 'flask.ini': socketVassal(port) },
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  const control = controlSocket(emp);
  const first = await waitFor(() => getJson(port), { what: 'generation 1 answering' });
  assert.equal(first.generation, '1');

  emp.write('flask.ini', socketVassal(port, `gunicron ${join(FIXTURES, 'socket-app.mjs')}`));
  const notFound = /reload failed: program gunicron not found on PATH/;
  await waitFor(async () => notFound.test((await vassal(control, 'flask'))?.reason ?? ''), {
    what: 'status saying the reload failed',
  });

  const wait = await runCli(['reload', 'flask', '--wait'], { control });
  expectCode(wait, 1, 'reload --wait of a file whose program is missing');
  assert.match(wait.stderr, /flask: .*program gunicron not found on PATH/);
  const after = await vassal(control, 'flask');
  assert.equal(after?.state, 'running');
  assert.match(after.reason ?? '', notFound, 'the error stays visible');
  assert.match((await runCli(['status'], { control })).stdout, notFound);
  const health = await runCli(['status', '--check'], { control });
  expectCode(health, 1, 'status --check while the file cannot run');
  assert.match(health.stderr, /unhealthy: flask \(its file's version is not running\)/);
  assert.equal((await getJson(port)).pid, first.pid, 'the old generation serves on');
  const before = await runCli(['show', 'flask', '--json'], { control });
  const shownBefore = JSON.parse(before.stdout) as { argv: string[]; not_applied: { argv: string[] } | null };
  assert.equal(shownBefore.argv[0], NODE, 'show describes what runs');
  assert.equal(shownBefore.not_applied?.argv[0], 'gunicron', '... and what the file says instead');
  assert.match(
    (await runCli(['show', 'flask'], { control })).stdout,
    /^not applied: the file says gunicron .*\(reload failed: program gunicron not found/m,
  );

  // The program appears: the same reload now applies the file as it says.
  writeFileSync(join(bin, 'gunicron'), `#!/bin/sh\nexec ${NODE} "$@"\n`);
  chmodSync(join(bin, 'gunicron'), 0o755);
  const ok = await runCli(['reload', 'flask', '--wait'], { control });
  expectCode(ok, 0, 'reload --wait once the program exists');
  expectCode(await runCli(['status', '--check'], { control }), 0, 'status --check once the file runs');
  const shown = await runCli(['show', 'flask', '--json'], { control });
  expectCode(shown, 0, 'show');
  const shownAfter = JSON.parse(shown.stdout) as { argv: string[]; not_applied: unknown };
  assert.equal(shownAfter.argv[0], 'gunicron');
  assert.equal(shownAfter.not_applied, null);
  const fixed = await vassal(control, 'flask');
  assert.equal(fixed?.reason, null, 'the error is gone once the file is applied');
  await waitFor(async () => (await getJson(port)).pid !== first.pid, { what: 'the new generation serving' });
});

void test('reload = restart: a program not on PATH, a missing chdir or env-file never stops the running instance', async (t) => {
  const port = await freePort();
  const good = `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'http-server.mjs')}\nenv = PORT=${port}\nstop-timeout = 5\n`;
  const emp = await startEmperor(t, { files: { 'worker.ini': good } });
  const control = controlSocket(emp);
  const first = await waitFor(() => getJson(port), { what: 'the app answering' });
  const pid = first.pid as number;

  // A script whose `#!` names an interpreter that is not there: execve would fail only after the
  // old instance had been stopped.
  const script = join(emp.dir, 'app.py');
  writeFileSync(script, '#!/nonexistent/python9 -u\nprint("hi")\n');
  chmodSync(script, 0o755);
  const bad: [string, RegExp][] = [
    [good.replace(NODE, 'pythn3'), /reload failed: program pythn3 not found on PATH/],
    [
      good.replace(`${NODE} ${join(FIXTURES, 'http-server.mjs')}`, script),
      /reload failed: program .*app\.py starts with `#!\/nonexistent\/python9`, which is missing/,
    ],
    [`${good}chdir = /nonexistent/app\n`, /reload failed: chdir \/nonexistent\/app does not exist/],
    [
      `${good}env-file = /nonexistent/app.env\n`,
      /reload failed: cannot read env-file: .*\/nonexistent\/app\.env/,
    ],
  ];
  for (const [body, reason] of bad) {
    const from = emp.lines.length;
    emp.write('worker.ini', body);
    await emp.waitLine(
      (l) => l.event === 'reload-failed' && l.vassal === 'worker',
      `reload-failed (${reason})`,
      from,
    );
    const v = await vassal(control, 'worker');
    assert.equal(v?.state, 'running');
    assert.match(v.reason ?? '', reason);
    assert.ok(alive(pid), `the running instance is untouched (${reason})`);
    assert.equal((await getJson(port)).pid, pid);
    assert.ok(
      !emp.lines.slice(from).some((l) => l.event === 'exit' || l.event === 'spawn-failed'),
      'nothing was stopped or spawned',
    );
    expectCode(await runCli(['reload', 'worker', '--wait'], { control }), 1, `reload --wait (${reason})`);
    expectCode(await runCli(['restart', 'worker', '--wait'], { control }), 1, `restart --wait (${reason})`);
    assert.ok(alive(pid), 'restart of an unrunnable file keeps the instance too');
  }

  emp.write('worker.ini', good.replace('stop-timeout = 5', 'stop-timeout = 4'));
  await waitFor(async () => (await getJson(port)).pid !== pid, { what: 'the fixed file applied' });
  assert.equal((await vassal(control, 'worker'))?.reason, null);
});

void test('status says when a stopped vassal’s sockets are closed', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t, { files: { 'web.ini': socketVassal(port) } });
  const control = controlSocket(emp);
  await waitFor(() => getJson(port), { what: 'the app answering' });
  const open = await vassal(control, 'web');
  assert.equal(open?.sockets_open, true);
  assert.match(
    (await runCli(['status'], { control })).stdout,
    new RegExp(`^web .* 127\\.0\\.0\\.1:${port}$`, 'm'),
  );

  expectCode(await runCli(['stop', 'web', '--wait'], { control }), 0, 'stop --wait');
  await assert.rejects(getJson(port), 'clients are refused');
  const stopped = await vassal(control, 'web');
  assert.deepEqual(stopped?.sockets, [`127.0.0.1:${port}`], 'the address is still listed');
  assert.equal(stopped.sockets_open, false);
  assert.match(
    (await runCli(['status'], { control })).stdout,
    new RegExp(`^web\\s+stopped\\s.*\\(closed\\) 127\\.0\\.0\\.1:${port}$`, 'm'),
  );

  expectCode(await runCli(['start', 'web', '--wait'], { control }), 0, 'start --wait');
  assert.equal((await vassal(control, 'web'))?.sockets_open, true);
});

void test('a deleted vassal shows as stopping until its instances are gone', async (t) => {
  const emp = await startEmperor(t, {
    files: {
      'stubborn.ini': `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'ignores-sigterm.mjs')}\nstop-timeout = 60\n`,
    },
  });
  const control = controlSocket(emp);
  const spawned = await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'stubborn', 'spawn');
  const pid = spawned.pid as number;
  // Its SIGTERM handler is installed once it says so.
  await waitFor(() => readFileSync(join(emp.logDir, 'stubborn.log'), 'utf8').includes(`up ${pid}`), {
    what: 'the app up',
  });

  rmSync(join(emp.vassals, 'stubborn.ini'));
  const v = await waitFor(
    async () => {
      const s = await vassal(control, 'stubborn');
      return s?.state === 'stopping' && s;
    },
    { what: 'stubborn listed as stopping' },
  );
  assert.ok(alive(pid), 'its instance is still stopping');
  assert.equal(v.instances[0]?.state, 'stopping');
  assert.match((await runCli(['status'], { control })).stdout, /^stubborn\s+stopping\s/m);

  killGroupQuietly(pid);
  await waitFor(async () => (await vassal(control, 'stubborn')) === undefined, {
    what: 'stubborn gone once its instance is',
  });
});
