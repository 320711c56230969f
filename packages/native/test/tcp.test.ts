import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { bindTcp, type ListeningSocket, type SocketError } from '../src/index.js';
import { waitFor } from './support.js';

function owned(t: TestContext, socket: ListeningSocket): ListeningSocket {
  t.after(() => {
    socket.close();
  });
  return socket;
}

/** Connects a client; the kernel completes the handshake into the backlog without any accept(). */
function client(t: TestContext, port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect({ host, port }, () => {
      resolve(c);
    });
    c.once('error', reject);
    t.after(() => c.destroy());
  });
}

void test('binds 127.0.0.1 on port 0 and reports the port the kernel chose', (t) => {
  const s = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  assert.ok(s.port !== undefined && s.port > 0, `port ${String(s.port)}`);
  assert.equal(s.address, `127.0.0.1:${s.port}`);
  assert.equal(s.hasPendingConnection(), false);
});

void test('owned fds are close-on-exec and non-blocking, as systemd passes sockets', (t) => {
  const s = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  const flagsLine = readFileSync(`/proc/self/fdinfo/${s.fd}`, 'utf8').match(/^flags:\s+(\d+)/m);
  assert.ok(flagsLine?.[1], 'no flags in fdinfo');
  const flags = parseInt(flagsLine[1], 8);
  assert.ok(flags & 0o2000000, `O_CLOEXEC missing in ${flagsLine[1]}`);
  assert.ok(flags & 0o4000, `O_NONBLOCK missing in ${flagsLine[1]}`);
});

void test('a connecting client is pending, and stays pending because nothing accepts it', async (t) => {
  const s = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  const c = await client(t, s.port ?? 0);
  await waitFor(() => s.hasPendingConnection(), { what: 'a pending connection' });
  // Asking again consumes nothing: the client is still there for the app.
  assert.equal(s.hasPendingConnection(), true);
  assert.equal(c.destroyed, false);
});

void test('watchReadable fires for a pending connection, and its close is idempotent', async (t) => {
  const s = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  let calls = 0;
  const woke = new Promise<Error | undefined>((resolve) => {
    const watch = s.watchReadable((error) => {
      calls++;
      watch.close(); // level-triggered: an on-demand wake-up stops watching at once
      watch.close();
      resolve(error);
    });
  });
  assert.throws(() => s.watchReadable(() => undefined), /already watched/);
  await client(t, s.port ?? 0);
  assert.equal(await woke, undefined);
  assert.equal(calls, 1);
  assert.equal(s.hasPendingConnection(), true, 'the watch must not take the connection');
  // Once the watch is closed, another one may start on the same socket.
  const again = await new Promise<boolean>((resolve) => {
    const w = s.watchReadable(() => {
      w.close();
      resolve(true);
    });
  });
  assert.equal(again, true);
});

void test('closing a watched socket stops the watch first; close is idempotent', (t) => {
  const s = bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 });
  const watch = s.watchReadable(() => assert.fail('a closed socket must not wake anyone'));
  s.close();
  s.close();
  watch.close();
  assert.equal(s.closed, true);
  assert.throws(() => s.hasPendingConnection(), /cannot poll 127\.0\.0\.1:\d+: it is closed/);
  assert.throws(() => s.watchReadable(() => undefined), /it is closed/);
  // The fd number is free again and may be reused at once by a new socket, unwatched.
  const next = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  assert.equal(next.hasPendingConnection(), false);
});

void test('a port in use is EADDRINUSE, with the address in the message', (t) => {
  const s = owned(t, bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 }));
  assert.throws(
    () => bindTcp({ host: '127.0.0.1', port: s.port ?? 0, backlog: 16 }),
    (error: SocketError) => {
      assert.equal(error.message, `cannot bind 127.0.0.1:${s.port}: address already in use (EADDRINUSE)`);
      assert.equal(error.code, 'EADDRINUSE');
      assert.equal(error.syscall, 'bind');
      assert.equal(error.address, `127.0.0.1:${s.port}`);
      return true;
    },
  );
});

void test('an address this host does not have is EADDRNOTAVAIL', () => {
  assert.throws(() => bindTcp({ host: '192.0.2.1', port: 0, backlog: 16 }), {
    code: 'EADDRNOTAVAIL',
    message: /^cannot bind 192\.0\.2\.1:0: .* \(EADDRNOTAVAIL\)$/,
  });
});

void test('bad arguments say what was expected', () => {
  assert.throws(() => bindTcp({ host: 'localhost', port: 80, backlog: 16 }), {
    name: 'TypeError',
    message: 'Expected `host` to be a numeric IP address, got "localhost"',
  });
  assert.throws(() => bindTcp({ host: '127.0.0.1', port: 70000, backlog: 16 }), {
    name: 'RangeError',
    message: 'Expected `port` to be an integer from 0 to 65535, got 70000',
  });
  assert.throws(() => bindTcp({ port: 0, backlog: 0 }), /`backlog` to be an integer from 1/);
});

function hasIpv6Loopback(): boolean {
  try {
    bindTcp({ host: '::1', port: 0, backlog: 1 }).close();
    return true;
  } catch {
    return false;
  }
}

void test('IPv6: [::1]', async (t) => {
  if (!hasIpv6Loopback()) {
    t.skip('this host has no IPv6 loopback');
    return;
  }
  const s = owned(t, bindTcp({ host: '::1', port: 0, backlog: 16 }));
  assert.equal(s.address, `[::1]:${s.port}`);
  await client(t, s.port ?? 0, '::1');
  await waitFor(() => s.hasPendingConnection(), { what: 'a pending IPv6 connection' });
});

void test('all addresses (`:PORT`): dual-stack [::] takes IPv4 and IPv6 clients', async (t) => {
  if (!hasIpv6Loopback()) {
    t.skip('this host has no IPv6: `:PORT` falls back to 0.0.0.0');
    return;
  }
  const s = owned(t, bindTcp({ port: 0, backlog: 16 }));
  assert.equal(s.address, `[::]:${s.port}`);
  await client(t, s.port ?? 0, '127.0.0.1');
  await client(t, s.port ?? 0, '::1');
  await waitFor(() => s.hasPendingConnection(), { what: 'pending connections' });
});

void test('ipv6Only on [::] refuses IPv4 clients', async (t) => {
  if (!hasIpv6Loopback()) {
    t.skip('this host has no IPv6');
    return;
  }
  const s = owned(t, bindTcp({ host: '::', port: 0, backlog: 16, ipv6Only: true }));
  await assert.rejects(client(t, s.port ?? 0, '127.0.0.1'), { code: 'ECONNREFUSED' });
});
