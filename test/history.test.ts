// `GET /v1/history` end to end: samples of CPU and memory per vassal and instance, the accept
// queue of an owned TCP socket, and state changes with restarts, as a client of the socket sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { controlSocket, freePort, startEmperor, waitFor } from './support.js';

interface VassalHistory {
  name: string;
  cpu_percent: (number | null)[];
  rss_bytes: (number | null)[];
  waiting: (number | null)[] | null;
  instances: { index: number; cpu_percent: (number | null)[]; rss_bytes: (number | null)[] }[];
  events: { at: string; state: string; restarts: number }[];
}

interface History {
  interval_s: number;
  window_s: number;
  sampling_until: string;
  times: number[];
  vassals: VassalHistory[];
}

function get(socketPath: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function history(socketPath: string, query = ''): Promise<History> {
  const r = await get(socketPath, `/v1/history${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as History;
}

function last<T>(xs: readonly T[] | null | undefined): T | undefined {
  return xs?.at(-1);
}

void test('history: CPU and memory per vassal and instance, waiting connections, state changes and restarts', async (t) => {
  const port = await freePort();
  // The app never accepts: connections wait in the kernel's accept queue of the owned socket.
  const emp = await startEmperor(t, {
    files: {
      'web.ini': `[vassal]\nexec = /bin/sleep 1000\nsocket = 127.0.0.1:${port}\nprocesses = 2\n`,
      'idle.ini': '[vassal]\nexec = /bin/sleep 1000\n',
    },
  });
  const control = controlSocket(emp);
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'web', 'web running');
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'idle', 'idle running');

  const first = await history(control);
  assert.equal(first.window_s, 900, 'fifteen minutes');
  assert.ok(first.interval_s > 0 && first.interval_s <= 5, 'a few seconds apart');
  assert.ok(Date.parse(first.sampling_until) > Date.now(), 'sampling goes on after the read');
  assert.ok(first.times.length >= 1, 'the first request takes a sample at once');
  const web = first.vassals.find((v) => v.name === 'web');
  assert.ok(web, 'web in the history');
  assert.equal(web.instances.length, 2, 'one series per instance');
  for (const i of web.instances) assert.ok((last(i.rss_bytes) ?? 0) > 0, `instance ${i.index} has RSS`);
  assert.equal(
    last(web.rss_bytes),
    web.instances.reduce((n, i) => n + (last(i.rss_bytes) ?? 0), 0),
    'the vassal sums its instances',
  );
  assert.equal(typeof last(web.cpu_percent), 'number');
  assert.equal(last(web.waiting), 0, 'nobody waits yet');
  assert.equal(first.vassals.find((v) => v.name === 'idle')?.waiting, null, 'no TCP socket, no queue');
  assert.deepEqual(
    web.events.map((e) => e.state).at(-1),
    'running',
    `state changes are recorded: ${JSON.stringify(web.events)}`,
  );

  // Two clients connect; nobody accepts them.
  const clients: Socket[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  for (let k = 0; k < 2; k++) {
    const c = connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    clients.push(c);
  }
  await waitFor(
    async () =>
      (last((await history(control, '?name=web')).vassals[0]?.waiting) ?? 0) >= 2 ? true : undefined,
    {
      what: 'two connections waiting on web',
    },
  );

  // A crash: the restart is in the events, with the count.
  const pid = (await waitFor(() => emp.lines.find((l) => l.event === 'spawn' && l.vassal === 'idle')?.pid, {
    what: 'idle pid',
  })) as number;
  const from = emp.lines.length;
  process.kill(pid, 'SIGKILL');
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'idle', 'idle running again', from);
  const after = await history(control, '?name=idle&points=1');
  assert.equal(after.times.length, 1, 'points limits the samples');
  const idle = after.vassals[0];
  assert.equal(idle?.name, 'idle');
  assert.equal(idle.cpu_percent.length, 1);
  assert.equal(last(idle.events)?.state, 'running');
  assert.ok((last(idle.events)?.restarts ?? 0) >= 1, `a restart is counted: ${JSON.stringify(idle.events)}`);
  assert.ok(
    idle.events.some((e) => e.state !== 'running'),
    `the crash shows between runs: ${JSON.stringify(idle.events)}`,
  );

  // Samples keep coming while someone reads; times only grow.
  const n = after.times.length;
  const later = await waitFor(
    async () => {
      const h = await history(control);
      return h.times.length > Math.max(n, first.times.length) ? h : undefined;
    },
    { what: 'a later sample' },
  );
  assert.deepEqual(
    [...later.times].sort((a, b) => a - b),
    later.times,
    'oldest first',
  );

  const two = await history(control, '?name=web&name=idle&points=2');
  assert.deepEqual(
    two.vassals.map((v) => v.name),
    ['idle', 'web'],
    'name repeats: only those vassals',
  );
  const bad = await get(control, '/v1/history?points=100000');
  assert.equal(bad.status, 400);
  const post = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: control, path: '/v1/history', method: 'POST', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(post, 405, 'read-only');
});

/** Reads `/v1/events` until `pick` accepts one of its events; the stream is closed then. */
function untilEvent<T>(
  socketPath: string,
  pick: (event: string, data: unknown) => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/v1/events', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        text += c;
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const event = /^event: (\w+)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === undefined || data === undefined) continue;
          const got = pick(event, JSON.parse(data) as unknown);
          if (got !== undefined) {
            req.destroy();
            resolve(got);
            return;
          }
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

void test('events: each sample names every vassal with its summed CPU % and RSS, and null for one without a process', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t, {
    files: {
      'web.ini': '[vassal]\nexec = /bin/sleep 1000\nprocesses = 2\n',
      'down.ini': `[vassal]\nexec = /bin/sleep 1000\non-demand = true\nsocket = 127.0.0.1:${port}\n`,
    },
  });
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'web', 'web running');
  type Sample = { at: number; emperor: { rss_bytes: number }; vassals: Record<string, unknown> };
  const sample = await untilEvent(controlSocket(emp), (event, data) =>
    event === 'sample' ? (data as Sample) : undefined,
  );
  assert.ok(sample.at > 0);
  assert.ok(sample.emperor.rss_bytes > 0);
  const [cpu, rss] = sample.vassals.web as [number, number];
  assert.equal(typeof cpu, 'number');
  assert.ok(rss > 0, `web's RSS, two sleeps: ${rss}`);
  assert.deepEqual(sample.vassals.down, [null, null]);
});

void test('events: the first status is the whole status, in order, errors included', async (t) => {
  // 250 files that never parse cost no process.
  const files: Record<string, string> = { 'web.ini': '[vassal]\nexec = /bin/sleep 1000\n' };
  for (let i = 0; i < 250; i++)
    files[`bad${String(i).padStart(3, '0')}.ini`] = `[vassal]\nprocesses = ${i}x\n`;
  const emp = await startEmperor(t, { files });
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'web', 'web running');
  const control = controlSocket(emp);
  type Status = { emperor: { pid: number }; vassals: { name: string; state: string; error: unknown }[] };
  const first = await untilEvent(control, (event, data) =>
    event === 'status' ? (data as Status) : undefined,
  );
  const whole = (await get(control, '/v1/status')).body as Status;
  assert.equal(first.emperor.pid, whole.emperor.pid);
  assert.deepEqual(
    first.vassals.map((v) => [v.name, v.state, v.error === null]),
    whole.vassals.map((v) => [v.name, v.state, v.error === null]),
  );
  assert.equal(first.vassals.length, 251);
});
