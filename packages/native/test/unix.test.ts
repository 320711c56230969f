import assert from 'node:assert/strict';
import { lstatSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { bindUnix, UNIX_PATH_MAX, type SocketError } from '../src/index.js';
import { exited, fixture, spawnChild, tempDir, waitFor } from './support.js';

void test('binds a unix socket with the mode given; a client waits in the backlog; close removes the file', async (t) => {
  const path = join(tempDir(t), 'app.sock');
  const s = bindUnix({ path, backlog: 16, mode: 0o640 });
  t.after(() => {
    s.close();
  });
  assert.equal(s.address, `unix:${path}`);
  assert.equal(s.port, undefined);
  const st = statSync(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o7777, 0o640);
  const c = connect(path);
  t.after(() => c.destroy());
  await waitFor(() => s.hasPendingConnection(), { what: 'a pending unix connection' });
  s.close();
  assert.throws(() => lstatSync(path), { code: 'ENOENT' });
});

void test('sets the owner before listening (as root)', (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('only root can give a socket to another user');
    return;
  }
  const path = join(tempDir(t), 'owned.sock');
  const s = bindUnix({ path, backlog: 16, mode: 0o660, uid: 65534, gid: 65534 });
  t.after(() => {
    s.close();
  });
  const st = statSync(path);
  assert.deepEqual([st.uid, st.gid], [65534, 65534]);
});

void test('replaces a stale socket file left by a killed process', async (t) => {
  const path = join(tempDir(t), 'stale.sock');
  const holder = spawnChild(t, process.execPath, [fixture('listen-on-unix-path.mjs'), path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitFor(() => lstatSync(path).isSocket(), { what: `the child to create ${path}` });
  holder.kill('SIGKILL');
  await exited(holder);
  assert.ok(lstatSync(path).isSocket(), 'the killed process left its socket file');

  const s = bindUnix({ path, backlog: 16 });
  t.after(() => {
    s.close();
  });
  const c = connect(path);
  t.after(() => c.destroy());
  await waitFor(() => s.hasPendingConnection(), { what: 'a client on the replaced socket' });
});

void test('never takes the path of a socket someone answers on', async (t) => {
  const path = join(tempDir(t), 'live.sock');
  // The check connects once and hangs up: the live server sees an empty connection.
  const server = createServer((c) => {
    c.on('error', () => undefined);
    c.end('still mine\n');
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => server.close());
  assert.throws(() => bindUnix({ path, backlog: 16 }), {
    code: 'EADDRINUSE',
    message: `cannot bind unix:${path}: address already in use: another process is listening on it (EADDRINUSE)`,
  });
  const answer = await new Promise<string>((resolve) => {
    const c = connect(path);
    c.setEncoding('utf8');
    c.on('data', resolve);
  });
  assert.equal(answer, 'still mine\n');
});

void test('refuses to remove a file that is not a socket', (t) => {
  const path = join(tempDir(t), 'data.txt');
  writeFileSync(path, 'precious\n');
  assert.throws(
    () => bindUnix({ path, backlog: 16 }),
    (error: SocketError) => {
      assert.equal(error.code, 'EEXIST');
      assert.equal(
        error.message,
        `cannot bind unix:${path}: a file that is not a socket is in the way, refusing to remove it (EEXIST)`,
      );
      return true;
    },
  );
  assert.equal(readFileSync(path, 'utf8'), 'precious\n');
});

void test('a path that is too long and a missing directory give clear errors', (t) => {
  const dir = tempDir(t);
  const long = join(dir, 'x'.repeat(UNIX_PATH_MAX + 1 - dir.length - 1));
  assert.equal(Buffer.byteLength(long), UNIX_PATH_MAX + 1);
  assert.throws(() => bindUnix({ path: long, backlog: 16 }), {
    code: 'ENAMETOOLONG',
    message: `cannot bind unix:${long}: the path is 108 bytes long, unix sockets allow at most 107 (ENAMETOOLONG)`,
  });
  // Exactly at the limit works.
  const atLimit = bindUnix({ path: long.slice(0, -1), backlog: 16 });
  atLimit.close();

  const missing = join(dir, 'no-such-dir', 'app.sock');
  assert.throws(() => bindUnix({ path: missing, backlog: 16 }), {
    code: 'ENOENT',
    message: `cannot bind unix:${missing}: directory ${join(dir, 'no-such-dir')} does not exist (ENOENT)`,
  });
});

void test("close leaves a successor's socket file alone", (t) => {
  const path = join(tempDir(t), 'app.sock');
  const old = bindUnix({ path, backlog: 16 });
  unlinkSync(path); // e.g. an operator cleaned up
  const successor = bindUnix({ path, backlog: 16 });
  old.close();
  assert.ok(lstatSync(path).isSocket(), "the successor's file is still there");
  successor.close();
  successor.close();
  assert.throws(() => lstatSync(path), { code: 'ENOENT' });
});
