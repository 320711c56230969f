// Drop-a-file lifecycle, end to end: a real emperor, real files, real processes and HTTP answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES,
  alive,
  freePort,
  getJson,
  groupMembers,
  startEmperor,
  waitFor,
  type LogLine,
} from './support.js';

const NODE = process.execPath;

function httpVassal(port: number, extra = ''): string {
  return `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'http-server.mjs')}\nenv = PORT=${port}\nstop-timeout = 5\n${extra}`;
}

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;

void test('a new file starts its app; touch and edit reload it; delete stops it', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('web.ini', httpVassal(port, 'env = GREETING=hello\n'));
  const first = await waitFor(() => getJson(port), { what: 'the app answering' });
  assert.equal(first.vassal, 'web');
  assert.equal(first.greeting, 'hello');
  assert.equal(first.generation, '1');

  // touch: same content, new mtime.
  let from = emp.lines.length;
  const future = new Date(Date.now() + 5000);
  utimesSync(join(emp.vassals, 'web.ini'), future, future);
  await emp.waitLine(spawnOf('web'), 'a respawn after touch', from);
  const second = await waitFor(
    async () => {
      const r = await getJson(port);
      return r.pid !== first.pid && r;
    },
    { what: 'a new pid after touch' },
  );
  assert.equal(second.generation, '2');
  assert.ok(!alive(first.pid as number), 'the old process is gone');

  // edit in place (as sed -i does: a new file renamed over the old one)
  from = emp.lines.length;
  execFileSync('sed', ['-i', 's/GREETING=hello/GREETING=bonjour/', join(emp.vassals, 'web.ini')]);
  await emp.waitLine(spawnOf('web'), 'a respawn after sed -i', from);
  const third = await waitFor(
    async () => {
      const r = await getJson(port);
      return r.greeting === 'bonjour' && r;
    },
    { what: 'the edited greeting' },
  );

  rmSync(join(emp.vassals, 'web.ini'));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'web', 'removed');
  assert.ok(!alive(third.pid as number), 'no process is left after delete');
  assert.equal(await emp.stop(), 0);
});

void test('a bad edit keeps the running generation and names file, line and the misspelt key', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('shop.ini', httpVassal(port));
  const before = await waitFor(() => getJson(port), { what: 'the app answering' });
  const from = emp.lines.length;
  emp.write('shop.ini', httpVassal(port, 'procesess = 2\n'));
  const err = await emp.waitLine(
    (l) => l.event === 'config-error' && l.vassal === 'shop',
    'config-error',
    from,
  );
  assert.match(String(err.msg), /shop\.ini:5: .*procesess.*processes/);
  assert.equal(err.line, 5);
  const after = await getJson(port);
  assert.equal(after.pid, before.pid, 'the old process still serves');
  assert.ok(!emp.lines.slice(from).some(spawnOf('shop')));
  // The next good version is applied.
  emp.write('shop.ini', httpVassal(port, 'processes = 1\n'));
  await emp.waitLine(spawnOf('shop'), 'the good version', from);
});

void test('an app that ignores SIGTERM is killed after stop-timeout, with its whole process group', async (t) => {
  const emp = await startEmperor(t);
  emp.write(
    'stubborn.ini',
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'ignores-sigterm.mjs')}\nstop-timeout = 0.5\n`,
  );
  const spawned = await emp.waitLine(spawnOf('stubborn'), 'spawn');
  const pid = spawned.pid as number;
  await waitFor(() => readFileSync(join(emp.logDir, 'stubborn.log'), 'utf8').includes('up '), {
    what: 'the app up',
  });
  const t0 = Date.now();
  rmSync(join(emp.vassals, 'stubborn.ini'));
  await emp.waitLine((l) => l.event === 'stop-timeout' && l.pid === pid, 'stop-timeout');
  const exit = await emp.waitLine((l) => l.event === 'exit' && l.pid === pid, 'exit');
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 >= 450, 'it had its stop-timeout');
  assert.ok(!alive(pid));
  await waitFor(() => readFileSync(join(emp.logDir, 'stubborn.log'), 'utf8').includes('ignoring SIGTERM'), {
    what: 'the app saying it ignores SIGTERM, in its log',
  });
});

void test('a shell vassal: its background grandchild dies with it', async (t) => {
  const emp = await startEmperor(t);
  emp.write(
    'sh.ini',
    '[vassal]\nshell = true\nexec = sleep 300 & sleep 301 & echo started; wait\nstop-timeout = 2\n',
  );
  const spawned = await emp.waitLine(spawnOf('sh'), 'spawn');
  const pgid = spawned.pid as number;
  const members = await waitFor(
    () => {
      const m = groupMembers(pgid);
      return m.length >= 3 && m;
    },
    { what: 'the shell and its two sleeps' },
  );
  rmSync(join(emp.vassals, 'sh.ini'));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'sh', 'removed');
  await waitFor(() => members.every((p) => !alive(p)), {
    what: 'every member gone',
    seen: () => members.filter(alive),
  });
});

void test('a crash-looping app is restarted with a visible, doubling backoff', async (t) => {
  const emp = await startEmperor(t);
  emp.write(
    'crash.ini',
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'exits-after.mjs')}\nrestart-delay = 0.1\nrestart-delay-max = 0.4\n`,
  );
  const delays: number[] = [];
  await waitFor(
    () => {
      delays.splice(
        0,
        delays.length,
        ...emp.lines.filter((l) => l.event === 'backoff').map((l) => l.delay_ms as number),
      );
      return delays.length >= 4;
    },
    { what: 'four backoff lines', seen: () => emp.lines.slice(-5) },
  );
  assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 400]);
  const exit = emp.lines.find((l) => l.event === 'exit' && l.vassal === 'crash');
  assert.equal(exit?.code, 1);
  await waitFor(() => readFileSync(join(emp.logDir, 'crash.log'), 'utf8').includes('crashing with 1'), {
    what: 'the crash in the log',
  });
});

void test('SIGKILL of an instance: it is restarted', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('victim.ini', httpVassal(port, 'restart-delay = 0.1\n'));
  const first = await waitFor(() => getJson(port), { what: 'the app answering' });
  process.kill(first.pid as number, 'SIGKILL');
  const next = await waitFor(
    async () => {
      const r = await getJson(port);
      return r.pid !== first.pid && r;
    },
    { what: 'a new instance' },
  );
  assert.equal(next.generation, '1', 'a restart keeps the generation');
  const exit = emp.lines.find((l) => l.event === 'exit' && l.pid === first.pid);
  assert.equal(exit?.signal, 'SIGKILL');
});

void test('a missing program is a failed state with the reason, not a crash loop', async (t) => {
  const emp = await startEmperor(t);
  emp.write('ghost.ini', '[vassal]\nexec = no-such-program-xyz --flag\n');
  const failed = await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'ghost', 'failed');
  assert.match(String(failed.reason), /no-such-program-xyz not found on PATH/);
  emp.write('dir.ini', `[vassal]\nexec = ${NODE} -e 1\nchdir = /nonexistent-dir-xyz\n`);
  const failed2 = await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'dir', 'failed');
  assert.match(String(failed2.reason), /nonexistent-dir-xyz does not exist/);
  // A shell wrapper that cannot find its command exits 127: the same failed state.
  emp.write('sh127.ini', '[vassal]\nshell = true\nexec = exec no-such-program-xyz\n');
  const failed3 = await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'sh127', 'failed');
  assert.match(String(failed3.reason), /127/);
  assert.equal(emp.lines.filter((l) => l.event === 'spawn' && l.vassal === 'ghost').length, 0);
});

void test('instances get EMPEROR_* and their env, never systemd variables of the emperor', async (t) => {
  const emp = await startEmperor(t, {
    env: {
      NOTIFY_SOCKET: '/run/systemd/notify',
      LISTEN_FDS: '2',
      LISTEN_PID: '1',
      WATCHDOG_USEC: '1000',
      KEEP_ME: 'yes',
    },
  });
  writeFileSync(join(emp.dir, 'extra.env'), '# comment\nFROM_FILE=1\nSHARED=file\n');
  emp.write(
    'envy.ini',
    `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'prints-env.mjs')}\nchdir = ${emp.dir}\nenv-file = ${join(emp.dir, 'extra.env')}\nenv = SHARED=line\nenv = WITH_HASH=#f00; x\numask = 077\n`,
  );
  const out = await waitFor(
    () => {
      const text = readFileSync(join(emp.logDir, 'envy.log'), 'utf8');
      return (
        text.includes('\n') &&
        (JSON.parse(text.split('\n')[0] ?? '') as { env: Record<string, string>; cwd: string })
      );
    },
    { what: 'the env line' },
  );
  assert.equal(out.env.EMPEROR_VASSAL, 'envy');
  assert.equal(out.env.EMPEROR_INSTANCE, '0');
  assert.equal(out.env.EMPEROR_GENERATION, '1');
  assert.equal(out.env.KEEP_ME, 'yes');
  assert.equal(out.env.FROM_FILE, '1');
  assert.equal(out.env.SHARED, 'line');
  assert.equal(out.env.WITH_HASH, '#f00; x');
  for (const k of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'WATCHDOG_USEC'])
    assert.equal(out.env[k], undefined, k);
  assert.equal(out.cwd, emp.dir);
});

void test('SIGTERM to the emperor stops every vassal in parallel and exits 0', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 5; i++)
    files[`s${i}.ini`] =
      `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'ignores-sigterm.mjs')}\nstop-timeout = 3\n`;
  const emp = await startEmperor(t, { files });
  await waitFor(() => emp.lines.filter((l) => l.event === 'spawn').length === 5 && true, {
    what: 'five spawns',
  });
  const pids = emp.lines.filter((l) => l.event === 'spawn').map((l) => l.pid as number);
  // Each has set its SIGTERM handler once it says `up` (a Node that has not yet would just die).
  await waitFor(
    () => [0, 1, 2, 3, 4].every((i) => readFileSync(join(emp.logDir, `s${i}.log`), 'utf8').includes('up ')),
    { what: 'five instances up' },
  );
  assert.equal(await emp.stop('SIGTERM'), 0);
  assert.ok(
    pids.every((p) => !alive(p)),
    'no vassal survives',
  );
  // Five 3 s stop-timeouts in parallel, not in sequence: in sequence they would fire 3 s apart.
  // The daemon's own timestamps, not the test's clock: a loaded machine delays both alike.
  const fired = emp.lines.filter((l) => l.event === 'stop-timeout').map((l) => l.time as number);
  assert.equal(fired.length, 5, 'each vassal had its stop-timeout');
  assert.ok(Math.max(...fired) - Math.min(...fired) < 3000, `stop-timeouts fired at ${fired.join(', ')}`);
});

void test('SIGKILL of the emperor: no vassal survives it for long, and the next emperor sweeps leftovers', async (t) => {
  const emp = await startEmperor(t, {
    files: { 'orphan.ini': '[vassal]\nshell = true\nexec = sleep 300 & exec sleep 301\n' },
  });
  const spawned = await emp.waitLine(spawnOf('orphan'), 'spawn');
  const pgid = spawned.pid as number;
  const members = await waitFor(
    () => {
      const m = groupMembers(pgid);
      return m.length >= 2 && m;
    },
    { what: 'both sleeps' },
  );
  await waitFor(
    () => readFileSync(join(emp.dir, 'run', 'emperor.state.json'), 'utf8').includes(String(pgid)),
    {
      what: 'the state file to record the group',
    },
  );
  emp.child.kill('SIGKILL');
  await emp.exited;
  // The main process dies with the emperor (pdeathsig); its background child is swept by the next one.
  await waitFor(() => !alive(pgid), { what: 'the main process to die with the emperor' });
  const again = await startEmperorOn(t, emp.dir);
  const swept = await again.waitLine((l) => l.event === 'leftovers-killed', 'leftovers-killed', 0);
  assert.ok(String(swept.pids).length > 0);
  await waitFor(() => members.every((p) => !alive(p)), {
    what: 'every leftover gone',
    seen: () => members.filter(alive),
  });
  // Stopped once it is up: a SIGTERM during its start-up would leave its cgroup tree to the sweep.
  await again.waitLine((l) => l.event === 'emperor-ready', 'emperor-ready', 0);
});

/** Starts a second emperor on the same runtime directory as a previous one. */
async function startEmperorOn(t: Parameters<typeof startEmperor>[0], dir: string) {
  const { spawn } = await import('node:child_process');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(
    NODE,
    [
      join(FIXTURES, '..', '..', 'packages', 'cli', 'bin', 'emperor.js'),
      'run',
      '--vassals',
      join(dir, 'empty'),
      '--log-dir',
      join(dir, 'logs2'),
      '--control',
      join(dir, 'run', 'control.sock'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env },
  );
  const lines: LogLine[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) lines.push(JSON.parse(p) as LogLine);
  });
  t.after(() => {
    child.kill('SIGTERM');
  });
  return {
    waitLine: (pred: (l: LogLine) => boolean, what: string, _from: number) =>
      waitFor(() => lines.find(pred), { what, seen: () => lines }),
  };
}

void test(
  'user and group: a root emperor runs the vassal as that user, with its group',
  { skip: process.getuid?.() === 0 ? false : 'needs root to switch users' },
  async (t) => {
    const emp = await startEmperor(t);
    emp.write('low.ini', `[vassal]\nexec = sleep 100\nuser = nobody\n`);
    const spawned = await emp.waitLine(spawnOf('low'), 'spawn');
    const status = await waitFor(
      () => {
        const text = readFileSync(`/proc/${spawned.pid as number}/status`, 'utf8');
        return text.startsWith('Name:\tsleep\n') ? text : undefined;
      },
      { what: 'the app exec-ed' },
    );
    assert.match(status, /\nUid:\t65534\t65534\t65534\t65534\n/);
    assert.match(status, /\nGid:\t65534\t65534\t65534\t65534\n/);
    assert.match(status, /\nGroups:\t(65534 )?\n/, 'its own groups, none of root');
    const environ = readFileSync(`/proc/${spawned.pid as number}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('USER=nobody') && environ.includes('LOGNAME=nobody'), 'USER and LOGNAME');
  },
);

void test(
  'user: a program the user cannot reach fails with a reason that names the user',
  { skip: process.getuid?.() === 0 ? false : 'needs root to switch users' },
  async (t) => {
    const emp = await startEmperor(t);
    // Root can run it (the emperor's lookup finds it); nobody cannot enter the 0700 directory.
    const dir = join(emp.dir, 'private');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'app.sh'), '#!/bin/sh\nexec sleep 100\n', { mode: 0o755 });
    emp.write('hidden.ini', `[vassal]\nexec = ${join(dir, 'app.sh')}\nuser = nobody\n`);
    const line = await emp.waitLine(
      (l) => l.vassal === 'hidden' && typeof l.reason === 'string' && l.reason.includes('EACCES'),
      'a failure for EACCES',
    );
    assert.match(String(line.reason), /user nobody cannot run it/);
  },
);

void test('a new `log` path applies to the next generation', async (t) => {
  const emp = await startEmperor(t);
  const body = `[vassal]\nexec = /bin/sh -c 'echo "gen $EMPEROR_GENERATION"; exec sleep 100'\n`;
  emp.write('talk.ini', body);
  await waitFor(
    () =>
      existsSync(join(emp.logDir, 'talk.log')) &&
      readFileSync(join(emp.logDir, 'talk.log'), 'utf8').includes('gen 1'),
    {
      what: 'gen 1 in the default log',
    },
  );
  const other = join(emp.dir, 'elsewhere.log');
  emp.write('talk.ini', `${body}log = ${other}\n`);
  await waitFor(() => existsSync(other) && readFileSync(other, 'utf8').includes('gen 2'), {
    what: 'gen 2 in the new log',
  });
  assert.doesNotMatch(readFileSync(join(emp.logDir, 'talk.log'), 'utf8'), /gen 2/);
  // Once generation 1 is gone, the emperor lets go of the old file.
  const oldLog = join(emp.logDir, 'talk.log');
  await waitFor(
    () =>
      !readdirSync(`/proc/${emp.child.pid as number}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${emp.child.pid as number}/fd/${fd}`) === oldLog;
        } catch {
          return false; // closed while we looked
        }
      }),
    { what: 'the old log file closed by the emperor' },
  );
});
