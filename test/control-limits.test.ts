// The control socket under abuse and scarcity: idle or half-closed clients, a busy emperor,
// oversized chunked bodies, a low fd limit, and a user who may not open the socket. The operator
// always gets an answer, or a message that says what is really wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  asUserReading,
  controlSocket,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type CliResult,
  type EmperorProcess,
} from './support.js';

const TICKER = `[vassal]\nexec = sh -c 'while :; do echo tick; sleep 0.2; done'\n`;

function expectCode(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

interface Held {
  readonly socket: Socket;
  /** What the emperor sent. */
  readonly got: () => string;
  /** The emperor closed its side. */
  readonly ended: () => boolean;
}

/** A client that connects, sends `bytes` (maybe nothing, maybe half a request), and never closes. */
function hold(path: string, bytes = ''): Held {
  const socket = connect({ path, allowHalfOpen: true });
  let got = '';
  let ended = false;
  socket.on('error', () => undefined);
  socket.setEncoding('utf8').on('data', (c: string) => (got += c));
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  if (bytes !== '') socket.write(bytes);
  return { socket, got: () => got, ended: () => ended };
}

function openFds(emp: EmperorProcess): number {
  return readdirSync(`/proc/${String(emp.child.pid)}/fd`).length;
}

void test('idle and half-closed clients never lock the CLI out; only busy connections refuse, and say so', async (t) => {
  const emp = await startEmperor(t, { files: { 'ticker.ini': TICKER } });
  const control = controlSocket(emp);
  expectCode(await runCli(['status'], { control }), 0, 'status');
  const baseline = openFds(emp);

  // More than the cap of 256: 280 that never send anything, 20 that send half a request.
  const idle = Array.from({ length: 300 }, (_, i) =>
    hold(control, i < 20 ? 'GET /v1/status HTTP/1.1\r\nHost: x\r\n' : ''),
  );
  t.after(() => {
    for (const c of idle) c.socket.destroy();
  });
  await waitFor(() => idle.every((c) => !c.socket.connecting), { what: '300 connections open' });
  expectCode(await runCli(['status'], { control }), 0, 'status beside 300 idle connections');
  // The emperor closes each of them by itself, though the clients never close their side.
  await waitFor(() => idle.every((c) => c.ended()), {
    what: 'every idle connection closed by the emperor',
    seen: () => `${String(idle.filter((c) => !c.ended()).length)} still open`,
  });
  await waitFor(() => openFds(emp) <= baseline + 2, {
    what: 'the fds of the idle connections released',
    seen: () => ({ baseline, now: openFds(emp) }),
  });

  // 256 log followers: every connection is answering a request; the next one is told so.
  const followers = Array.from({ length: 256 }, () =>
    hold(control, 'GET /v1/vassals/ticker/logs?follow=1&lines=0 HTTP/1.1\r\nHost: x\r\n\r\n'),
  );
  t.after(() => {
    for (const c of followers) c.socket.destroy();
  });
  // (Under a lower fd limit than this machine's the cap is lower: the last ones are refused.)
  await waitFor(() => followers.every((c) => c.got().startsWith('HTTP/1.1 ')), {
    what: '256 followers answered',
    seen: () => `${String(followers.filter((c) => !c.got().startsWith('HTTP/1.1 ')).length)} waiting`,
  });
  assert.ok(
    followers.some((c) => c.got().startsWith('HTTP/1.1 200')),
    'followers are served',
  );
  const busy = await runCli(['status'], { control });
  expectCode(busy, 3, 'status beside 256 log followers');
  assert.match(busy.stderr, /refused: too many connections.*\[EMP_CONTROL_BUSY\]/);
  assert.doesNotMatch(busy.stderr, /cannot reach|emperor run/);
  for (const c of followers.splice(0, 1)) c.socket.destroy();
  await waitFor(async () => (await runCli(['status'], { control })).code === 0, {
    what: 'status answered once a follower has gone',
  });
});

void test('an oversized chunked body gets its 413 and nothing else: no internal error is logged', async (t) => {
  const emp = await startEmperor(t);
  const control = controlSocket(emp);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        socketPath: control,
        path: '/v1/actions',
        method: 'POST',
        agent: false,
        headers: { 'transfer-encoding': 'chunked' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        const done = (): void => {
          resolve({ status: res.statusCode ?? 0, body });
        };
        res.on('end', done).on('close', done);
      },
    );
    // The emperor closes without reading the rest: the client's writes then fail, after the answer.
    req.on('error', (err) => {
      setImmediate(() => {
        reject(err);
      }); // unless the answer came first
    });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const pump = (): void => {
      while (sent < 160) {
        sent += 1;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
  assert.equal(answer.status, 413);
  assert.match(answer.body, /EMP_CONTROL_TOO_LARGE/);
  // A request that logs, after it: any error of the 413's own handling is logged before this line.
  const from = emp.lines.length;
  expectCode(await runCli(['reload', 'all'], { control }), 0, 'a request after the 413');
  await emp.waitLine((l) => l.event === 'control-action', 'the next control-action', from);
  const errors = emp.lines.filter((l) => (l.level as number) >= 50);
  assert.deepEqual(errors, [], 'no error lines');
});

void test('under ulimit -n 128 the CLI still gets in, and status says why vassals could not start', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 80; i++) files[`s${String(i).padStart(2, '0')}.ini`] = '[vassal]\nexec = sleep 1000\n';
  const emp = await startEmperor(t, { files, prefix: ['prlimit', '--nofile=128:128', '--'] });
  const control = controlSocket(emp);
  interface Status {
    vassals: { name: string; state: string; reason: string | null }[];
  }
  const status = await waitFor(
    async () => {
      const r = await runCli(['status', '--json'], { control });
      if (r.code !== 0) return undefined;
      const s = JSON.parse(r.stdout) as Status;
      return s.vassals.length === 80 && s.vassals.every((v) => ['running', 'failed'].includes(v.state)) && s;
    },
    { what: '80 vassals running or failed' },
  );
  const failed = status.vassals.filter((v) => v.state === 'failed');
  const running = status.vassals.filter((v) => v.state === 'running');
  assert.ok(running.length > 0, 'some vassals run');
  assert.ok(failed.length > 0, '128 fds are not enough for 80 vassals');
  for (const v of failed)
    assert.match(
      v.reason ?? '',
      /too many open files: .* of its 128 file descriptors .*LimitNOFILE=/,
      v.name,
    );

  // Idle connections at the fd cap: the emperor keeps fds for them and drops the oldest.
  const idle = Array.from({ length: 20 }, () => hold(control));
  t.after(() => {
    for (const c of idle) c.socket.destroy();
  });
  await waitFor(() => idle.every((c) => !c.socket.connecting), { what: '20 idle connections' });
  const table = await runCli(['status'], { control });
  expectCode(table, 0, 'status beside 20 idle connections at the fd limit');
  assert.match(table.stdout, /failed: too many open files/);
  assert.equal(emp.child.exitCode, null, 'the emperor is still running');
});

void test('under ulimit -n 64 the emperor refuses to start and says why, instead of an EMFILE on a module', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(['run', '--vassals', dir, '--control', join(dir, 'ctl.sock'), '--log-dir', dir], {
    prefix: ['prlimit', '--nofile=64:64', '--'],
  });
  expectCode(r, 1, 'a limit too low to start');
  assert.match(
    r.stderr,
    /^emperor: its open-file limit is 64, and it needs at least 128 to start; raise it \(`LimitNOFILE=` .*\[EMP_FD_LIMIT_TOO_LOW\]$/m,
  );
});

void test('a soft fd limit below the hard one is raised to it at start', async (t) => {
  const emp = await startEmperor(t, { prefix: ['prlimit', '--nofile=64:4096', '--'] });
  const limits = readFileSync(`/proc/${String(emp.child.pid)}/limits`, 'utf8');
  assert.match(limits, /^Max open files +4096 +4096 /m);
});

void test('a user who may not open the socket is told so, not told to start the emperor', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to switch to another user (run the tests as root to cover this)');
    return;
  }
  const emp = await startEmperor(t);
  chmodSync(emp.dir, 0o711); // the temp dir is 0700: let the user reach the socket itself
  chmodSync(controlSocket(emp), 0o600);
  const nobody = asUserReading(65534);
  const r = await runCli(['status'], { control: controlSocket(emp), prefix: nobody });
  expectCode(r, 3, 'status as nobody');
  assert.match(r.stderr, /cannot reach the emperor at \S+ \(EACCES\): permission denied/);
  assert.doesNotMatch(r.stderr, /Start it|emperor run`/);
});
