import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, get } from 'node:http';
import { test } from 'node:test';
import { bindTcp, bindUnix } from '@emperor/native';
import { listen, listenFds, VassalError } from '../src/index.js';
import { childEnv, exited, fixture, lines, spawnChild, waitFor } from './support.js';

const pid = 4242;

void test('listenFds follows sd_listen_fds: only for LISTEN_PID, fds from 3, names from LISTEN_FDNAMES', () => {
  const env = { LISTEN_PID: String(pid), LISTEN_FDS: '3', LISTEN_FDNAMES: 'http:admin' };
  assert.deepEqual(listenFds(env, pid), [
    { fd: 3, name: 'http' },
    { fd: 4, name: 'admin' },
    { fd: 5, name: 'unknown' },
  ]);
  assert.deepEqual(listenFds({ ...env, LISTEN_PID: '4243' }, pid), [], 'meant for another process');
  assert.deepEqual(listenFds({ LISTEN_FDS: '1' }, pid), [], 'no LISTEN_PID');
  assert.deepEqual(listenFds({ ...env, LISTEN_FDS: 'two' }, pid), []);
  assert.deepEqual(listenFds({ ...env, LISTEN_PID: '+4242' }, pid), []);
  assert.deepEqual(listenFds({ LISTEN_PID: String(pid), LISTEN_FDS: '1' }, pid), [
    { fd: 3, name: 'unknown' },
  ]);
});

void test('listen falls back to PORT, then to the port option, with a coded error when there is neither', async (t) => {
  const server = createServer((_req, res) => res.end('ok'));
  t.after(() => server.close());
  const where = await listen(server, { env: { PORT: '0' }, host: '127.0.0.1' });
  assert.equal(where.inherited, false);
  assert.equal(where.fd, undefined);
  assert.ok(typeof where.address === 'object' && where.address && where.address.port > 0);

  const other = createServer();
  t.after(() => other.close());
  const byOption = await listen(other, { env: {}, port: 0, host: '127.0.0.1' });
  assert.equal(byOption.inherited, false);

  const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
    p.then(
      () => undefined,
      (err: unknown) => (err instanceof VassalError ? err.code : String(err)),
    );
  assert.equal(await codeOf(listen(createServer(), { env: {} })), 'EMP_SDK_NO_SOCKET');
  assert.equal(await codeOf(listen(createServer(), { env: { PORT: 'http' } })), 'EMP_SDK_BAD_PORT');
  assert.equal(await codeOf(listen(createServer(), { env: { PORT: '70000' } })), 'EMP_SDK_BAD_PORT');
  const inherited = { LISTEN_PID: String(process.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'http' };
  const err = await listen(createServer(), { env: inherited, name: 'admin' }).catch((e: unknown) => e);
  assert.ok(err instanceof VassalError);
  assert.equal(err.code, 'EMP_SDK_SOCKET_NAME');
  assert.match(err.message, /`http`/, 'the message lists the names there are');
});

function getText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve(body);
      });
    }).once('error', reject);
  });
}

/** Runs the fixture as the emperor does: sockets at fd 3+, LISTEN_PID set by a shell that execs. */
function spawnWithSockets(t: Parameters<typeof spawnChild>[0], fds: number[], env: Record<string, string>) {
  return spawnChild(
    t,
    '/bin/sh',
    ['-c', 'export LISTEN_PID=$$ && exec "$0" "$@"', process.execPath, fixture('serve-inherited.mjs')],
    {
      stdio: ['ignore', 'pipe', 'inherit', ...fds],
      env: childEnv({ LISTEN_FDS: String(fds.length), ...env }),
    },
  );
}

void test('listen serves on the inherited socket named by the option, and keeps the backlog', async (t) => {
  const admin = bindTcp({ host: '127.0.0.1', port: 0, backlog: 1024 });
  const http = bindTcp({ host: '127.0.0.1', port: 0, backlog: 1024 });
  t.after(() => {
    admin.close();
    http.close();
  });
  const child = spawnWithSockets(t, [admin.fd, http.fd], {
    LISTEN_FDNAMES: 'admin:http',
    SOCKET_NAME: 'http',
    BACKLOG: '1000',
  });
  const out = lines(child.stdout);
  const line = await waitFor(() => out[0], { what: 'the fixture listening' });
  const where = JSON.parse(line) as { inherited: boolean; fd: number; name: string; pid: number };
  assert.deepEqual([where.inherited, where.fd, where.name], [true, 4, 'http']);
  assert.equal(
    await getText(http.port ?? 0),
    String(child.pid),
    'the app pid answers: it kept the shell pid',
  );
  // For a listening socket, ss shows the backlog as Send-Q; Node's listen({fd}) alone sets 511.
  const ss = execFileSync('ss', ['-Hltn', `sport = :${http.port}`], { encoding: 'utf8' });
  assert.match(ss, /^LISTEN\s+\d+\s+1000\s/m, ss);
  child.kill('SIGTERM');
  assert.equal((await exited(child)).code, 0);
});

void test('listen takes an inherited unix socket too; without LISTEN_PID the fds are ignored', async (t) => {
  const dir = mkdtempSync('/tmp/emp-sdk-');
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const sock = bindUnix({ path: `${dir}/app.sock`, backlog: 64 });
  t.after(() => {
    sock.close();
  });
  const child = spawnWithSockets(t, [sock.fd], {});
  const out = lines(child.stdout);
  const where = JSON.parse(await waitFor(() => out[0], { what: 'the fixture listening' })) as {
    inherited: boolean;
    fd: number;
  };
  assert.deepEqual([where.inherited, where.fd], [true, 3]);
  const body = await new Promise<string>((resolve, reject) => {
    get({ socketPath: `${dir}/app.sock`, agent: false }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve(text);
      });
    }).once('error', reject);
  });
  assert.equal(body, String(child.pid));
  child.kill('SIGTERM');
  await exited(child);

  // LISTEN_PID names another process (the variables leaked to a child): PORT is used instead.
  const stranger = spawnChild(t, process.execPath, [fixture('serve-inherited.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit', sock.fd],
    env: childEnv({ LISTEN_FDS: '1', LISTEN_PID: '1', PORT: '0' }),
  });
  const strangerOut = lines(stranger.stdout);
  const fallback = JSON.parse(await waitFor(() => strangerOut[0], { what: 'the stranger listening' })) as {
    inherited: boolean;
  };
  assert.equal(fallback.inherited, false);
  stranger.kill('SIGTERM');
  await exited(stranger);
});
