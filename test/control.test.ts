// The control socket and the `emperor` command, end to end: the built CLI against a real daemon,
// every command and exit code, and a socket that refuses users without access.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  FIXTURES,
  asUserReading,
  controlSocket,
  freePort,
  getJson,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type CliResult,
} from './support.js';

const NODE = process.execPath;

interface Status {
  emperor: Record<string, unknown>;
  vassals: (Record<string, unknown> & {
    name: string;
    state: string;
    generation: number;
    instances: Record<string, unknown>[];
    error: Record<string, unknown> | null;
  })[];
}

function httpVassal(port: number): string {
  return `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'http-server.mjs')}\nenv = PORT=${port}\nstop-timeout = 5\n`;
}

const CRASHER = `[vassal]\nexec = ${NODE} ${join(FIXTURES, 'exits-after.mjs')}\nenv = EXIT_CODE=3\nenv = EXIT_AFTER_MS=50\nrestart-delay = 30\n`;
const MISSING = '[vassal]\nexec = /nonexistent/bin/app --port 1\n';
const TYPO = '[vassal]\nexec = sleep 100\nprocesess = 2\n';

async function status(control: string, name?: string): Promise<Status> {
  const r = await runCli(['status', ...(name ? [name] : []), '--json'], { control });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

function expectCode(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

void test('status shows running, failed, backoff and config-error vassals as a table and as JSON', async (t) => {
  const port = await freePort();
  const lazyPort = await freePort();
  const LAZY = `[vassal]\nexec = sleep 100\nsocket = 127.0.0.1:${lazyPort}\non-demand = true\n`;
  const emp = await startEmperor(t, {
    files: {
      'web.ini': httpVassal(port),
      'crash.ini': CRASHER,
      'gone.ini': MISSING,
      'typo.ini': TYPO,
      'lazy.ini': LAZY,
    },
  });
  const control = controlSocket(emp);
  assert.equal(statSync(control).mode & 0o777, 0o660, 'the socket is mode 0660');
  await waitFor(() => getJson(port), { what: 'web answering' });
  const s = await waitFor(
    async () => {
      const st = await status(control);
      const by = new Map(st.vassals.map((v) => [v.name, v]));
      return by.get('web')?.state === 'running' &&
        by.get('crash')?.state === 'backoff' &&
        by.get('gone')?.state === 'failed' &&
        by.get('lazy')?.state === 'waiting' &&
        by.get('typo')?.error
        ? st
        : undefined;
    },
    { what: 'running, backoff, failed, waiting and config-error vassals' },
  );

  // The stable schema of SPEC §5.
  assert.deepEqual(Object.keys(s).sort(), ['emperor', 'vassals']);
  for (const k of ['pid', 'version', 'uptime_s', 'vassal_dirs']) assert.ok(k in s.emperor, `emperor.${k}`);
  assert.equal(s.emperor.pid, emp.child.pid);
  const keys = [
    'name',
    'file',
    'state',
    'generation',
    'restarts',
    'sockets',
    'instances',
    'last_exit',
    'last_stderr',
    'backoff_until',
    'error',
  ];
  for (const v of s.vassals) for (const k of keys) assert.ok(k in v, `${v.name}.${k}`);
  const by = new Map(s.vassals.map((v) => [v.name, v]));
  const web = by.get('web');
  assert.ok(web);
  assert.equal(web.file, join(emp.vassals, 'web.ini'));
  const inst = web.instances[0];
  assert.ok(inst);
  for (const k of ['index', 'pid', 'state', 'uptime_s', 'rss_bytes', 'cpu_percent'])
    assert.ok(k in inst, `instance.${k}`);
  assert.ok((inst.rss_bytes as number) > 1_000_000, 'RSS of a node app is read from /proc');
  const crash = by.get('crash');
  assert.equal((crash?.last_exit as { code: number }).code, 3);
  assert.match(String(crash?.backoff_until), /^\d{4}-\d\d-\d\dT/);
  assert.ok((crash?.last_stderr as string[]).includes('crashing with 3'));
  assert.match(String(by.get('gone')?.reason), /nonexistent/);
  const lazy = by.get('lazy');
  assert.deepEqual(lazy?.sockets, [`127.0.0.1:${lazyPort}`]);
  assert.deepEqual(lazy.instances, [], 'on-demand: nothing runs until a client connects');
  const typo = by.get('typo')?.error;
  assert.ok(typo, 'typo has a pending error');
  assert.equal(typo.code, 'EMP_CONFIG_UNKNOWN_KEY');
  assert.equal(typo.line, 3);
  assert.equal(typo.file, join(emp.vassals, 'typo.ini'));

  const table = await runCli(['status'], { control });
  expectCode(table, 0, 'status');
  const lines = table.stdout.trimEnd().split('\n');
  for (const l of lines) assert.ok(l.length <= 80, `fits 80 columns: ${l}`);
  assert.ok(!table.stdout.includes('\u001b['), 'no colors when stdout is not a TTY');
  assert.match(lines[0] ?? '', /^NAME\s+STATE\s+GEN\s+PID\s+UPTIME\s+RESTARTS\s+CPU%\s+RSS\s+SOCKETS$/);
  assert.match(table.stdout, /^web\s+running\s+1\s+\d+\s+\d+s\s+0\s+[\d.]+\s+\d+(\.\d)?M/m);
  assert.match(table.stdout, /typo\.ini:3: unknown key `procesess`/);
  assert.match(table.stdout, /backoff: exit code 3 at [\d:]+, \d+ restarts?; next try (in \d+s|now)/);
  assert.match(table.stdout, /\| crashing with 3/);
  assert.match(table.stdout, /failed: .*nonexistent/);

  // One vassal by name or glob; an unknown name says what is near.
  assert.deepEqual(
    (await status(control, 'w*')).vassals.map((v) => v.name),
    ['web'],
  );
  const unknown = await runCli(['status', 'wbe'], { control });
  expectCode(unknown, 1, 'status of an unknown name');
  assert.match(unknown.stderr, /no vassal matches `wbe`; did you mean `web`\?/);
  const names = await runCli(['status', '--names'], { control });
  assert.deepEqual(names.stdout.trim().split('\n'), ['crash', 'gone', 'lazy', 'typo', 'web']);
  assert.match(table.stdout, new RegExp(`^lazy\\s+waiting\\s.*127\\.0\\.0\\.1:${lazyPort}`, 'm'));
});

void test('actions stop, start, restart and reload vassals; --wait reports the outcome', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t, { files: { 'web.ini': httpVassal(port), 'gone.ini': MISSING } });
  const control = controlSocket(emp);
  await waitFor(() => getJson(port), { what: 'web answering' });

  const stop = await runCli(['stop', 'web', '--wait'], { control });
  expectCode(stop, 0, 'stop --wait');
  assert.match(stop.stdout, /^web: stopped/);
  assert.equal((await status(control, 'web')).vassals[0]?.state, 'stopped');
  await assert.rejects(getJson(port), 'the app is down');

  const start = await runCli(['start', 'web', '--wait'], { control });
  expectCode(start, 0, 'start --wait');
  assert.match(start.stdout, /^web: running, generation 2/);
  await waitFor(() => getJson(port), { what: 'web answering again' });

  const restart = await runCli(['restart', 'w*', '--wait'], { control });
  expectCode(restart, 0, 'restart --wait');
  assert.match(restart.stdout, /generation 3/);
  const reload = await runCli(['reload', 'all'], { control });
  expectCode(reload, 0, 'reload without --wait');
  assert.match(reload.stdout, /web: reload requested/);

  // A vassal that cannot start: --wait says why, exit 1.
  const failed = await runCli(['restart', 'gone', '--wait'], { control });
  expectCode(failed, 1, 'restart --wait of a missing binary');
  assert.match(failed.stderr, /gone: failed: .*nonexistent/);

  const unknown = await runCli(['stop', 'wbe'], { control });
  expectCode(unknown, 1, 'an unknown name');
  assert.match(unknown.stderr, /did you mean `web`\?.*EMP_VASSAL_UNKNOWN/);
  assert.equal((await status(control, 'web')).vassals[0]?.state === 'stopped', false, 'nothing was stopped');

  expectCode(await runCli(['stop'], { control }), 2, 'no name');
  expectCode(await runCli(['start', 'web', '--bogus'], { control }), 2, 'unknown option');
  expectCode(await runCli(['stop', 'web', '--timeout', '5'], { control }), 2, '--timeout without --wait');
  expectCode(await runCli(['stop', 'a/b'], { control }), 2, 'not a name');
});

const TICKER = `[vassal]\nexec = sh -c 'i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.05; done'\n`;

void test('logs prints the last lines and -f follows lines written after it started', async (t) => {
  const emp = await startEmperor(t, {
    files: {
      'ticker.ini': TICKER,
    },
  });
  const control = controlSocket(emp);
  await waitFor(
    async () => {
      const r = await runCli(['logs', 'ticker', '-n', '3'], { control });
      return r.stdout.split('\n').filter(Boolean).length === 3 && r;
    },
    { what: 'three lines of log' },
  );
  const last = await runCli(['logs', 'ticker', '-n', '2'], { control });
  expectCode(last, 0, 'logs -n 2');
  assert.match(last.stdout, /^tick-\d+\ntick-\d+\n$/);

  // -f with -n 0: everything it prints was written after it started.
  const { spawn } = await import('node:child_process');
  const env: Record<string, string | undefined> = { ...process.env, EMPEROR_CONTROL: control };
  delete env.NODE_EXTRA_CA_CERTS;
  const { BIN } = await import('./support.js');
  const follower = spawn(NODE, [BIN, 'logs', 'ticker', '-f', '-n', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => follower.kill('SIGKILL'));
  let out = '';
  follower.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const ticks = await waitFor(
    () => {
      const nums = [...out.matchAll(/^tick-(\d+)$/gm)].map((m) => Number(m[1]));
      return nums.length >= 5 && nums;
    },
    { what: 'five followed lines', seen: () => out },
  );
  // Consecutive: nothing missed or repeated.
  ticks.forEach((n, i) => {
    if (i > 0) assert.equal(n, (ticks[i - 1] ?? 0) + 1, `line ${i} follows line ${i - 1}`);
  });
  // The vassal's file is removed: the follower ends instead of waiting forever.
  const ended = new Promise<number | null>((done) => follower.once('exit', done));
  rmSync(join(emp.vassals, 'ticker.ini'));
  assert.equal(await ended, 0, 'logs -f exits 0 when its vassal is gone');
  emp.write('ticker.ini', TICKER);
  await waitFor(() => runCli(['logs', 'ticker', '-n', '1'], { control }).then((r) => r.code === 0 && r), {
    what: 'ticker back',
  });

  const unknown = await runCli(['logs', 'tikcer'], { control });
  expectCode(unknown, 1, 'logs of an unknown name');
  assert.match(unknown.stderr, /did you mean `ticker`/);
  expectCode(await runCli(['logs', 'ticker', '-n', 'x'], { control }), 2, '-n not a number');
});

void test('show, version, completion and --help', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t, { files: { 'web.ini': httpVassal(port) + 'env = GREETING=hi\n' } });
  const control = controlSocket(emp);
  await waitFor(() => getJson(port), { what: 'web answering' });
  const show = await runCli(['show', 'web'], { control });
  expectCode(show, 0, 'show');
  assert.match(show.stdout, /argv: +\S*node \S*http-server\.mjs/);
  assert.match(show.stdout, /^ {2}GREETING=hi$/m);
  assert.match(show.stdout, /^ {2}EMPEROR_VASSAL=web$/m);
  assert.match(show.stdout, new RegExp(`watches: +${join(emp.vassals, 'web.ini')}`));
  const json = JSON.parse((await runCli(['show', 'web', '--json'], { control })).stdout) as Record<
    string,
    unknown
  >;
  assert.deepEqual(json.argv, [NODE, join(FIXTURES, 'http-server.mjs')]);

  const version = await runCli(['version'], { control });
  expectCode(version, 0, 'version');
  assert.match(version.stdout, /^emperor \d+\.\d+\.\d+/);
  assert.match(version.stdout, new RegExp(`daemon +\\S+ \\(pid ${String(emp.child.pid)}`));
  expectCode(await runCli(['version'], { control: '/nonexistent/x.sock' }), 0, 'version without a daemon');

  const completion = await runCli(['completion', 'bash']);
  expectCode(completion, 0, 'completion');
  assert.match(completion.stdout, /complete -F _emperor emperor/);
  execFileSync('bash', ['-n', '-c', completion.stdout]);
  expectCode(await runCli(['completion', 'fish']), 2, 'an unknown shell');

  for (const cmd of ['status', 'stop', 'logs', 'show', 'version', 'completion']) {
    const help = await runCli([cmd, '--help']);
    expectCode(help, 0, `${cmd} --help`);
    assert.match(help.stdout, new RegExp(`emperor ${cmd}`));
  }
});

void test('an unreachable daemon is exit 3, naming the socket, the errno and how to start it', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'control.sock');
  for (const args of [['status'], ['status', '--json'], ['stop', 'web'], ['logs', 'web'], ['show', 'web']]) {
    const r = await runCli([...args, '--control', path]);
    expectCode(r, 3, args.join(' '));
    assert.match(r.stderr, new RegExp(`cannot reach the emperor at ${path} \\(ENOENT\\)`));
    assert.match(r.stderr, /emperor run/);
  }
});

/** One raw HTTP exchange on the socket; resolves with what came back before the server closed. */
function raw(path: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ path });
    let got = '';
    sock.setEncoding('utf8').on('data', (c: string) => (got += c));
    sock.on('error', reject);
    sock.on('close', () => {
      resolve(got);
    });
    sock.end(bytes);
  });
}

function post(path: string, target: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: target, method: 'POST', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

void test('malformed, oversized and slow requests get a 4xx with a code; the daemon keeps answering', async (t) => {
  const emp = await startEmperor(t);
  const control = controlSocket(emp);
  assert.match(await raw(control, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400[\s\S]*EMP_CONTROL_BAD_REQUEST/);
  assert.match(
    await raw(control, 'GET /v1/vassals/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    /^HTTP\/1\.1 400[\s\S]*EMP_CONTROL_BAD_REQUEST/,
  );
  assert.match(
    await raw(control, `GET /v1/status HTTP/1.1\r\nx: ${'a'.repeat(20_000)}\r\n\r\n`),
    /^HTTP\/1\.1 431[\s\S]*EMP_CONTROL_TOO_LARGE/,
  );
  const big = await post(
    control,
    '/v1/actions',
    JSON.stringify({ action: 'stop', targets: ['x'.repeat(70_000)] }),
  );
  assert.equal(big.status, 413);
  assert.match(big.body, /EMP_CONTROL_TOO_LARGE/);
  const badJson = await post(control, '/v1/actions', '{nope');
  assert.equal(badJson.status, 400);
  assert.match(badJson.body, /EMP_CONTROL_BAD_JSON/);
  const badAction = await post(
    control,
    '/v1/actions',
    JSON.stringify({ action: 'explode', targets: ['all'] }),
  );
  assert.equal(badAction.status, 400);
  assert.match(badAction.body, /EMP_CONTROL_BAD_REQUEST/);
  assert.match(
    await raw(control, 'GET /v2/nothing HTTP/1.1\r\n\r\n'),
    /^HTTP\/1\.1 404[\s\S]*EMP_CONTROL_NOT_FOUND/,
  );
  assert.match(
    await raw(control, 'DELETE /v1/status HTTP/1.1\r\n\r\n'),
    /^HTTP\/1\.1 405[\s\S]*EMP_CONTROL_METHOD/,
  );

  // A client that sends half a request and waits does not stall anyone else.
  const slow = connect({ path: control });
  t.after(() => slow.destroy());
  slow.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n');
  const started = Date.now();
  expectCode(await runCli(['status'], { control }), 0, 'status next to a slow client');
  assert.ok(Date.now() - started < 5000, 'answered without waiting for the slow client');
  assert.equal(emp.child.exitCode, null, 'the daemon is still running');
});

void test('a second emperor on the same socket is refused; /metrics serves Prometheus text', async (t) => {
  const port = await freePort();
  const metricsPort = await freePort();
  const emp = await startEmperor(t, { args: ['--metrics', `127.0.0.1:${metricsPort}`] });
  // Dropped in after the start, so the reaction to its file is measured.
  emp.write('web.ini', httpVassal(port));
  await waitFor(() => getJson(port), { what: 'web answering' });
  const metrics = await waitFor(
    () =>
      new Promise<string>((resolve, reject) => {
        request({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => {
            resolve(text);
          });
        })
          .on('error', reject)
          .end();
      }),
    { what: '/metrics' },
  );
  assert.match(metrics, /^emperor_vassal_state\{vassal="web",state="running"\} 1$/m);
  assert.match(metrics, /^emperor_vassal_rss_bytes\{vassal="web"\} \d+$/m);
  assert.match(metrics, /^process_resident_memory_bytes \d+$/m);
  assert.match(metrics, /^emperor_instance_ready_seconds_count [1-9]/m);
  assert.match(metrics, /^emperor_reaction_seconds_count 1$/m);
  assert.match(metrics, /^emperor_reaction_seconds_bucket\{le="\+Inf"\} 1$/m);

  const second = await runCli([
    'run',
    '--vassals',
    emp.vassals,
    '--log-dir',
    emp.logDir,
    '--control',
    controlSocket(emp),
  ]);
  expectCode(second, 1, 'a second emperor');
  assert.match(second.stderr, /another emperor answers on/);
  expectCode(await runCli(['status'], { control: controlSocket(emp) }), 0, 'the first one still answers');
});

void test('users without access to the socket are refused; --control-group lets a group in', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to create a user (run the tests as root to cover this)');
    return;
  }
  const user = `emp${String(process.pid % 100000)}`;
  execFileSync('useradd', ['--system', '--no-create-home', '--user-group', user]);
  t.after(() => {
    execFileSync('userdel', [user]);
  });
  const asUser = asUserReading(user);

  const closed = await startEmperor(t);
  chmodSync(closed.dir, 0o711); // the temp dir is 0700: let the user reach the socket itself
  const refused = await runCli(['status'], { control: controlSocket(closed), prefix: asUser });
  expectCode(refused, 3, 'status as another user');
  assert.match(refused.stderr, /\(EACCES\): permission denied/);
  const act = await runCli(['stop', 'all'], { control: controlSocket(closed), prefix: asUser });
  expectCode(act, 3, 'stop as another user');

  const shared = await startEmperor(t, { args: ['--control-group', user] });
  chmodSync(shared.dir, 0o711);
  const member = asUserReading(user, 'init');
  expectCode(
    await runCli(['status'], { control: controlSocket(shared), prefix: member }),
    0,
    'status as a member of the group',
  );
});

void test('a runtime directory writable by others or a symlink is refused before anything starts', async (t) => {
  const base = tempDir(t);
  const open = join(base, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const vassals = join(base, 'vassals');
  mkdirSync(vassals);
  const args = ['run', '--vassals', vassals, '--log-dir', join(base, 'logs'), '--control'];
  const r = await runCli([...args, join(open, 'control.sock')]);
  expectCode(r, 1, 'a 0777 runtime directory');
  assert.match(r.stderr, /writable by others \(mode 777\).*\[EMP_RUNTIME_DIR_UNSAFE\]/);
  symlinkSync(vassals, join(base, 'link'));
  const l = await runCli([...args, join(base, 'link', 'control.sock')]);
  expectCode(l, 1, 'a symlinked runtime directory');
  assert.match(l.stderr, /not a directory \(a symlink\?\).*\[EMP_RUNTIME_DIR_UNSAFE\]/);
});
