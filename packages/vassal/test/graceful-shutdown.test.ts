import assert from 'node:assert/strict';
import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { gracefulShutdown, type GracefulShutdownOptions } from '../src/index.js';
import { childEnv, exited, fixture, lines, spawnChild, waitFor } from './support.js';

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly reused: boolean;
}

function fetchText(port: number, path: string, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: req.reusedSocket });
      });
    });
    req.once('error', reject);
    req.end();
  });
}

async function serve(
  t: TestContext,
  handler: RequestListener,
  options: GracefulShutdownOptions,
): Promise<{ server: Server; port: number; shutdown: ReturnType<typeof gracefulShutdown> }> {
  const server = createServer(handler);
  const shutdown = gracefulShutdown(server, { signal: [], exit: false, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port, shutdown };
}

/**
 * `n` keep-alive clients through `agent`, each sending requests until an answer says
 * `connection: close`; `left` resolves with when each left (undefined for one whose request failed).
 */
function keepAliveClients(
  port: number,
  agent: Agent,
  n: number,
): { stats: { ok: number; reused: number; failures: string[] }; left: Promise<(number | undefined)[]> } {
  const stats = { ok: 0, reused: 0, failures: [] as string[] };
  const client = async (): Promise<number | undefined> => {
    for (;;) {
      try {
        const a = await fetchText(port, '/', agent);
        stats.ok += 1;
        if (a.reused) stats.reused += 1;
        if (a.headers.connection === 'close') return Date.now();
      } catch (err) {
        stats.failures.push((err as Error).message);
        return undefined;
      }
    }
  };
  return { stats, left: Promise.all(Array.from({ length: n }, client)) };
}

void test('busy keep-alive clients get `connection: close` on their next response, and none fails', async (t) => {
  const { port, shutdown } = await serve(
    t,
    (_req, res) => {
      setTimeout(() => res.end('ok'), 1);
    },
    { idleGraceMs: 30_000, timeoutMs: 60_000, spreadMs: 0 },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => {
    agent.destroy();
  });
  const { stats, left } = keepAliveClients(port, agent, 4);
  await waitFor(() => stats.ok >= 100, { what: '100 requests' });
  const started = Date.now();
  assert.equal(await shutdown.shutdown(), 'drained');
  const took = Date.now() - started;
  assert.deepEqual(
    (await left).map((at) => at !== undefined),
    [true, true, true, true],
    'every client was told to close',
  );
  assert.deepEqual(stats.failures, []);
  assert.ok(stats.reused > 50, `keep-alive connections were reused (${stats.reused} of ${stats.ok})`);
  // Busy connections leave with their next response: nothing waited for the 30 s idle grace (the
  // bound is half of it: a loaded machine stretches the drain, never to 15 s).
  assert.ok(took < 15_000, `drained in ${took} ms`);
  await assert.rejects(fetchText(port, '/', false), /ECONNREFUSED/, 'no longer accepting');
});

void test('keep-alive clients are sent away at moments spread over `spreadMs`, and none fails', async (t) => {
  const { port, shutdown } = await serve(
    t,
    (_req, res) => {
      setTimeout(() => res.end('ok'), 1);
    },
    { idleGraceMs: 30_000, timeoutMs: 60_000, spreadMs: 800 },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => {
    agent.destroy();
  });
  const { stats, left } = keepAliveClients(port, agent, 8);
  await waitFor(() => stats.ok >= 100, { what: '100 requests' });
  const started = Date.now();
  assert.equal(await shutdown.shutdown(), 'drained');
  const leftAt = (await left).filter((at) => at !== undefined);
  assert.deepEqual(stats.failures, []);
  assert.equal(leftAt.length, 8, 'every client was told to close');
  const offsets = leftAt.map((at) => at - started);
  const [first, last] = [Math.min(...offsets), Math.max(...offsets)];
  // 8 uniform draws over 800 ms all within 150 ms of each other: probability below 1e-4.
  assert.ok(last - first > 150, `departures spread: ${offsets.join(', ')} ms`);
  // The window, with room for a loaded machine; waiting for the 30 s idle grace would be the bug.
  assert.ok(last < 15_000, `all gone within the window: ${offsets.join(', ')} ms`);
});

void test('a request in flight is answered (with `connection: close`) before the server is done', async (t) => {
  const { server, port, shutdown } = await serve(
    t,
    (_req, res) => {
      setTimeout(() => res.end('late'), 300);
    },
    { spreadMs: 0 },
  );
  const agent = new Agent({ keepAlive: true });
  t.after(() => {
    agent.destroy();
  });
  const arrived = once(server, 'request');
  const answer = fetchText(port, '/', agent);
  await arrived;
  const outcome = shutdown.shutdown();
  assert.equal(shutdown.draining, true);
  const a = await answer;
  assert.deepEqual([a.status, a.body, a.headers.connection], [200, 'late', 'close']);
  assert.equal(await outcome, 'drained');
});

void test('an idle keep-alive connection is closed at once when idle longer than the grace', async (t) => {
  const { server, port, shutdown } = await serve(t, (_req, res) => res.end('ok'), {
    idleGraceMs: 100,
    timeoutMs: 60_000,
  });
  server.keepAliveTimeout = 60_000; // not closing at once would wait for this (capped at 30 s)
  const agent = new Agent({ keepAlive: true });
  t.after(() => {
    agent.destroy();
  });
  await fetchText(port, '/', agent);
  await new Promise((resolve) => setTimeout(resolve, 150));
  const started = Date.now();
  assert.equal(await shutdown.shutdown(), 'drained');
  assert.ok(Date.now() - started < 15_000, `drained in ${Date.now() - started} ms`);
});

void test("by default an idle keep-alive connection stays open until the server's keep-alive timeout, and a request on it is answered", async (t) => {
  const { server, port, shutdown } = await serve(t, (_req, res) => res.end('ok'), { spreadMs: 0 });
  server.keepAliveTimeout = 4000;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => {
    agent.destroy();
  });
  assert.equal((await fetchText(port, '/', agent)).reused, false);
  const outcome = shutdown.shutdown();
  // Idle past the old 1 s grace: a client reusing its connection now must not see a reset.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const again = await fetchText(port, '/', agent);
  assert.deepEqual([again.status, again.reused, again.headers.connection], [200, true, 'close']);
  assert.equal(await outcome, 'drained');
});

void test('a keep-alive timeout longer than half the deadline is cut to it: the drain still ends by itself', async (t) => {
  const { server, port, shutdown } = await serve(t, (_req, res) => res.end('ok'), {
    spreadMs: 0,
    timeoutMs: 800,
  });
  server.keepAliveTimeout = 60_000;
  const agent = new Agent({ keepAlive: true });
  t.after(() => {
    agent.destroy();
  });
  await fetchText(port, '/', agent);
  assert.equal(await shutdown.shutdown(), 'drained');
});

void test('the deadline destroys what is left and says timeout', async (t) => {
  const { server, port, shutdown } = await serve(t, () => undefined, { timeoutMs: 300 });
  const arrived = once(server, 'request');
  const hung = fetchText(port, '/', false).then(
    () => 'answered',
    (err: unknown) => (err as NodeJS.ErrnoException).code,
  );
  await arrived;
  const started = Date.now();
  assert.equal(await shutdown.shutdown(), 'timeout');
  assert.ok(Date.now() - started >= 250);
  assert.equal(await hung, 'ECONNRESET');
});

void test('SIGTERM: the app drains, runs onShutdown and exits 0; a request stuck past the deadline makes it exit 1', async (t) => {
  const app = spawnChild(t, process.execPath, [fixture('graceful-app.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: childEnv({ DELAY_MS: '200' }),
  });
  const out = lines(app.stdout);
  const port = Number((await waitFor(() => out[0], { what: 'listening' })).split(' ')[1]);
  const answer = fetchText(port, '/', false);
  await waitFor(() => out.includes('request /'), { what: 'the request at the app' });
  app.kill('SIGTERM');
  assert.equal((await answer).body, String(app.pid), 'the request in flight was answered');
  assert.deepEqual(await exited(app), { code: 0, signal: null });
  assert.ok(out.includes('on-shutdown'), out.join('\n'));

  const stuck = spawnChild(t, process.execPath, [fixture('graceful-app.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: childEnv({ TIMEOUT_MS: '300' }),
  });
  const stuckOut = lines(stuck.stdout);
  const stuckPort = Number((await waitFor(() => stuckOut[0], { what: 'listening' })).split(' ')[1]);
  const hung = fetchText(stuckPort, '/hang', false).catch(() => 'failed');
  await waitFor(() => stuckOut.includes('request /hang'), { what: 'the request at the app' });
  stuck.kill('SIGTERM');
  assert.deepEqual(await exited(stuck), { code: 1, signal: null });
  assert.equal(await hung, 'failed');
});

void test('a second signal exits at once', async (t) => {
  const app = spawnChild(t, process.execPath, [fixture('graceful-app.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: childEnv({ TIMEOUT_MS: '60000' }),
  });
  const out = lines(app.stdout);
  const port = Number((await waitFor(() => out[0], { what: 'listening' })).split(' ')[1]);
  const hung = fetchText(port, '/hang', false).catch(() => 'failed');
  await waitFor(() => out.includes('request /hang'), { what: 'the request at the app' });
  app.kill('SIGTERM');
  // Refusing new connections says the first signal was taken; the hung request keeps it draining.
  await waitFor(
    () =>
      fetchText(port, '/', false).then(
        () => false,
        (err: unknown) => (err as NodeJS.ErrnoException).code === 'ECONNREFUSED',
      ),
    { what: 'the first signal handled' },
  );
  assert.equal(app.exitCode, null, 'still draining after the first signal');
  const started = Date.now();
  app.kill('SIGTERM');
  assert.deepEqual(await exited(app), { code: 1, signal: null });
  assert.ok(Date.now() - started < 20_000, 'exited before the 60 s deadline');
  assert.equal(await hung, 'failed');
});

void test('spreadMs must be a number >= 0, and is cut to half the deadline', () => {
  const server = createServer();
  assert.throws(() => gracefulShutdown(server, { signal: [], exit: false, spreadMs: Number.NaN }), TypeError);
  assert.throws(() => gracefulShutdown(server, { signal: [], exit: false, spreadMs: -1 }), TypeError);
  // No throw: a spread past the deadline would cut busy clients off, so it is capped instead.
  gracefulShutdown(server, { signal: [], exit: false, spreadMs: 60_000, timeoutMs: 1000 });
});
