import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test } from 'node:test';
import { bindTcp, openDatagram } from '../src/index.js';
import { exited, fdTarget, fixture, spawnChild, waitFor } from './support.js';

interface Answer {
  pid: number;
  fd: number;
  fdsAtStart: Record<string, string>;
}

function request(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve(JSON.parse(body) as Answer);
      });
    }).once('error', reject);
  });
}

void test('owned sockets reach a child at fd 3 and 4, and only those; the child serves HTTP on them', async (t) => {
  const first = bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 });
  const second = bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 });
  const notPassed = bindTcp({ host: '127.0.0.1', port: 0, backlog: 16 });
  const notify = openDatagram(`@emperor-test/${process.pid}/pass-fd`);
  t.after(() => {
    for (const s of [first, second, notPassed, notify]) s.close();
  });

  // A client that arrives before any app runs waits in the backlog and is answered by the app.
  const early = request(first.port ?? 0);
  await waitFor(() => first.hasPendingConnection(), { what: 'the early client in the backlog' });

  const child = spawnChild(t, process.execPath, [fixture('serve-http-on-inherited-fds.mjs')], {
    stdio: ['ignore', 'inherit', 'inherit', first.fd, second.fd],
    env: { ...process.env, LISTEN_FDS: '2' },
  });
  const fromEarly = await early;
  assert.equal(fromEarly.pid, child.pid);
  assert.equal(fromEarly.fd, 3);

  const fromSecond = await request(second.port ?? 0);
  assert.equal(fromSecond.pid, child.pid);
  assert.equal(fromSecond.fd, 4);

  const seen = fromSecond.fdsAtStart;
  assert.equal(seen['3'], fdTarget(first.fd), 'fd 3 is the first owned socket');
  assert.equal(seen['4'], fdTarget(second.fd), 'fd 4 is the second owned socket');
  const leaked = Object.entries(seen).filter(
    ([, target]) => target === fdTarget(notPassed.fd) || target === fdTarget(notify.fd),
  );
  assert.deepEqual(leaked, [], 'owned fds that were not passed must not reach the child (close-on-exec)');

  // The emperor never accepted: every connection went to the child.
  assert.equal(first.hasPendingConnection(), false);
  child.kill('SIGTERM');
  assert.equal(await exited(child), 0);
});
