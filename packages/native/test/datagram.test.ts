import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { openDatagram, sendDatagram, type Datagram, type DatagramSocket } from '../src/index.js';
import { exited, fixture, spawnChild, waitFor } from './support.js';

let counter = 0;
function open(t: TestContext): DatagramSocket {
  const s = openDatagram(`@emperor-test/${process.pid}/${counter++}`);
  t.after(() => {
    s.close();
  });
  return s;
}

/** Collects what a watch on `s` receives. */
function collect(t: TestContext, s: DatagramSocket): Datagram[] {
  const got: Datagram[] = [];
  const watch = s.watchReadable((error) => {
    if (error) throw error;
    got.push(...s.receive());
  });
  t.after(() => {
    watch.close();
  });
  return got;
}

const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;

void test('receives sd_notify datagrams from a Node-free sender, with its pid', async (t) => {
  if (!hasPython) {
    t.skip('python3 is not installed');
    return;
  }
  const s = open(t);
  const got = collect(t, s);
  const sender = spawnChild(
    t,
    'python3',
    [fixture('send-datagrams.py'), 'READY=1', 'STATUS=serving\nMAINPID=1'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NOTIFY_SOCKET: s.address },
    },
  );
  let out = '';
  sender.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  assert.equal(await exited(sender), 0);
  await waitFor(() => got.length === 2, { what: `two datagrams, got ${JSON.stringify(got)}` });
  const pid = Number(out.trim());
  assert.deepEqual(got, [
    { data: 'READY=1', pid, uid: process.getuid?.(), truncated: false },
    { data: 'STATUS=serving\nMAINPID=1', pid, uid: process.getuid?.(), truncated: false },
  ]);
});

void test('drains every message in order, beyond the kernel queue length; 4 KiB fits, more is flagged as truncated', async (t) => {
  if (!hasPython) {
    t.skip('python3 is not installed');
    return;
  }
  const s = open(t);
  const got = collect(t, s);
  const messages = Array.from({ length: 30 }, (_, i) => `STATUS=${i}`);
  const exact = `STATUS=${'x'.repeat(4096 - 7)}`;
  // More messages than the kernel queues by default (net.unix.max_dgram_qlen = 10): the sender
  // blocks until the watch drains the queue, so none is lost.
  const sender = spawnChild(
    t,
    'python3',
    [fixture('send-datagrams.py'), ...messages, exact, 'y'.repeat(5000)],
    {
      stdio: 'ignore',
      env: { ...process.env, NOTIFY_SOCKET: s.address },
    },
  );
  assert.equal(await exited(sender), 0);
  await waitFor(() => got.length === 32, { what: `32 datagrams, got ${got.length}` });
  assert.deepEqual(
    got.slice(0, 30).map((d) => d.data),
    messages,
  );
  assert.equal(got[30]?.data, exact);
  assert.equal(got[30].truncated, false);
  assert.equal(got[31]?.data.length, 4096);
  assert.equal(got[31].truncated, true);
  assert.deepEqual(s.receive(), []);
});

void test('the real systemd-notify --ready reaches the socket, and its barrier completes', async (t) => {
  if (!existsSync('/usr/bin/systemd-notify')) {
    t.skip('/usr/bin/systemd-notify is not installed');
    return;
  }
  const s = open(t);
  const got = collect(t, s);
  const notify = spawnChild(t, '/usr/bin/systemd-notify', ['--ready', '--status=up'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, NOTIFY_SOCKET: s.address },
  });
  // systemd 252 sends BARRIER=1 with a pipe fd and waits until the receiver closes it: exit 0
  // (not "Failed to invoke barrier") proves receive() closed the fd it got.
  assert.equal(await exited(notify), 0);
  const ready = await waitFor(() => got.find((d) => d.data.split('\n').includes('READY=1')), {
    what: `READY=1, got ${JSON.stringify(got)}`,
  });
  assert.match(ready.data, /^STATUS=up$/m);
  // As root, systemd-notify puts its parent's pid in the credentials (it may: CAP_SYS_ADMIN);
  // as any other user the kernel gives its own pid. Either way it is not a pid to trust alone:
  // the per-instance socket is what tells instances apart.
  const expected = process.getuid?.() === 0 ? process.pid : notify.pid;
  assert.equal(ready.pid, expected);
  t.diagnostic(`READY=1 came with pid ${ready.pid} (test ${process.pid}, systemd-notify ${notify.pid})`);
});

void test('bad addresses, a taken name, and use after close', (t) => {
  assert.throws(() => openDatagram('/run/notify'), {
    name: 'TypeError',
    message: 'Expected an abstract socket address such as "@emperor/app/0", got "/run/notify"',
  });
  assert.throws(() => openDatagram('@'), { name: 'TypeError' });
  const long = `@${'n'.repeat(108)}`;
  assert.throws(() => openDatagram(long), {
    code: 'ENAMETOOLONG',
    message: `cannot bind ${long}: the name is 108 bytes long, abstract socket names allow at most 107 (ENAMETOOLONG)`,
  });
  openDatagram(`@${'n'.repeat(107)}`).close();

  const s = open(t);
  assert.throws(() => openDatagram(s.address), {
    code: 'EADDRINUSE',
    message: `cannot bind ${s.address}: address already in use: another socket has this abstract name (EADDRINUSE)`,
  });
  s.close();
  s.close();
  assert.throws(() => s.receive(), /cannot receive on @emperor-test\/.*: it is closed/);
  // The name is free again at once: abstract sockets leave no file behind.
  openDatagram(s.address).close();
});

void test('sendDatagram reaches an abstract socket with our pid, and says why when nobody listens', async (t) => {
  const s = open(t);
  const got = collect(t, s);
  sendDatagram(s.address, 'READY=1\nSTATUS=up');
  const [d] = await waitFor(() => (got.length > 0 ? got : undefined), { what: 'a datagram' });
  assert.deepEqual([d?.data, d?.pid], ['READY=1\nSTATUS=up', process.pid]);
  assert.throws(() => {
    sendDatagram(`@emperor-test/${process.pid}/nobody`, 'READY=1');
  }, /ECONNREFUSED/);
});
