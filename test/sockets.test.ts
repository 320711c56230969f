// Owned sockets end to end: the emperor binds, instances inherit (LISTEN_FDS), clients never see
// a refused connection while apps start, reload, sleep and wake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, connect } from 'node:net';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEADLINE_MS,
  FIXTURES,
  alive,
  freePort,
  startEmperor,
  startLoad,
  waitFor,
  type LogLine,
} from './support.js';

const NODE = process.execPath;
const APP = join(FIXTURES, 'socket-app.mjs');

interface Answer {
  pid: number;
  instance: string;
  generation: string;
  listenPid: string | null;
  listenFds: string | null;
  fdNames: string | null;
  inherited: boolean;
}

/** One GET on a new connection, to a TCP port or a unix socket. */
function get(target: { port: number; host?: string } | { socketPath: string }): Promise<Answer> {
  return new Promise((done, fail) => {
    const where =
      'socketPath' in target
        ? { socketPath: target.socketPath }
        : { host: target.host ?? '127.0.0.1', port: target.port };
    const req = request({ ...where, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          done(JSON.parse(body) as Answer);
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', fail);
    req.setTimeout(DEADLINE_MS, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}

function socketVassal(socket: string, extra = ''): string {
  return `[vassal]\nexec = ${NODE} ${APP}\nsocket = ${socket}\nstop-timeout = 5\n${extra}`;
}

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;

void test('an owned TCP socket is inherited at fd 3 with LISTEN_FDS, LISTEN_PID = the instance pid and names', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('web.ini', socketVassal(`http=127.0.0.1:${port}`));
  const spawned = await emp.waitLine(spawnOf('web'), 'spawn');
  const a = await get({ port });
  assert.equal(a.pid, spawned.pid);
  assert.equal(a.inherited, true);
  assert.equal(a.listenPid, String(a.pid));
  assert.equal(a.listenFds, '1');
  assert.equal(a.fdNames, 'http');
});

void test('processes = 3 share one socket; a rolling reload under load fails no request and leaves only new pids', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  // Slow starts make the overlap real: the old generation serves until the new one says ready.
  const body = socketVassal(`127.0.0.1:${port}`, 'processes = 3\nready = fd\nenv = START_DELAY_MS=300\n');
  emp.write('pool.ini', body);
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'pool', 'running');
  const oldPids = new Set<number>();
  await waitFor(
    async () => {
      oldPids.add((await get({ port })).pid);
      return oldPids.size === 3;
    },
    { what: 'three instances answering' },
  );

  const load = startLoad(t, () => get({ port }), 4);
  const from = emp.lines.length;
  emp.write('pool.ini', body + 'env = GREETING=v2\n');
  await emp.waitLine(
    (l) => l.event === 'running' && l.vassal === 'pool' && l.generation === 2,
    'generation 2 running',
    from,
  );
  await waitFor(() => [...oldPids].every((p) => !alive(p)), { what: 'the old generation gone' });
  const okBefore = load.ok();
  await waitFor(() => load.ok() >= okBefore + 20, { what: 'more requests after the reload' });
  await load.stop();
  assert.deepEqual(load.failures, [], 'no request failed');
  const after = new Set<number>();
  for (let i = 0; i < 30; i++) after.add((await get({ port })).pid);
  for (const pid of after) assert.ok(!oldPids.has(pid), `pid ${pid} of the old generation answered`);
  assert.ok(load.ok() > 40, `requests went through (${load.ok()})`);
});

/** CAP_SYS_NICE (bit 23) in our effective set, as the emperor checks before lowering a priority. */
function canRaisePriority(): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${hex}`) >> 23n) & 1n) === 1n;
}

/** The nice value of a process, from /proc/PID/stat (field 19). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

void test(
  'a generation booting beside a serving one runs at a lower CPU priority until it is ready',
  { skip: !canRaisePriority() && 'raising a priority back needs CAP_SYS_NICE' },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    // Generation 2 stays booting until the test opens its gate: a fixed start delay raced with a
    // loaded machine, where the test read the priority after the instance was already ready.
    const gate = join(emp.dir, 'gate');
    writeFileSync(`${gate}.1`, '');
    const body = socketVassal(`127.0.0.1:${port}`, `ready = fd\nenv = START_GATE=${gate}\n`);
    emp.write('nice.ini', body);
    const first = await emp.waitLine(spawnOf('nice'), 'first spawn');
    assert.equal(niceOf(first.pid as number), 0, 'nothing serves yet: full priority');
    await emp.waitLine((l) => l.event === 'running' && l.vassal === 'nice', 'running');
    const from = emp.lines.length;
    emp.write('nice.ini', body + 'env = GREETING=v2\n');
    const second = (await emp.waitLine(spawnOf('nice'), 'second spawn', from)).pid as number;
    assert.equal(niceOf(second), 10, 'booting beside generation 1');
    writeFileSync(`${gate}.2`, '');
    await emp.waitLine((l) => l.event === 'running' && l.generation === 2, 'generation 2 running', from);
    await waitFor(() => niceOf(second) === 0, { what: 'the priority back once ready' });
    // The retired instance may still accept a connection while it takes its SIGTERM.
    await waitFor(() => !alive(first.pid as number), { what: 'generation 1 retired' });
    assert.equal((await get({ port })).pid, second);
  },
);

void test('retire-nice: the generation a rolling reload retires drains at a lower CPU priority', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  const body = socketVassal(`127.0.0.1:${port}`, 'ready = fd\nretire-nice = 10\nenv = STOP_DELAY_MS=3000\n');
  emp.write('old.ini', body);
  const first = (await emp.waitLine(spawnOf('old'), 'first spawn')).pid as number;
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'old', 'running');
  const base = niceOf(first); // the emperor's own
  const from = emp.lines.length;
  emp.write('old.ini', body + 'env = GREETING=v2\n');
  await emp.waitLine((l) => l.event === 'running' && l.generation === 2, 'generation 2 running', from);
  await waitFor(() => niceOf(first) === Math.min(19, base + 10), {
    what: 'the retired instance at nice +10',
  });
  assert.ok(alive(first), 'still draining');
  await waitFor(() => !alive(first), { what: 'the retired instance gone' });
});

void test('on-demand: nothing runs until the first client, which the app answers; idle puts it back to sleep', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('lazy.ini', socketVassal(`127.0.0.1:${port}`, 'on-demand = true\nidle = 1\n'));
  await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'lazy', 'waiting');
  assert.ok(!emp.lines.some(spawnOf('lazy')), 'nothing spawned before a client');
  const first = await get({ port });
  const spawned = await emp.waitLine(spawnOf('lazy'), 'spawn');
  assert.equal(first.pid, spawned.pid, 'the first connection is answered by the app');
  const from = emp.lines.length;
  await emp.waitLine((l) => l.event === 'idle' && l.vassal === 'lazy', 'idle', from);
  await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'lazy', 'waiting again', from);
  await waitFor(() => !alive(first.pid), { what: 'the instance gone' });
  // The port stays bound while it sleeps: a connection is queued, not refused, and wakes it.
  const again = await get({ port });
  assert.notEqual(again.pid, first.pid);
  assert.ok(alive(again.pid));
});

void test('an on-demand app that exits 0 by itself goes back to waiting, not into backoff', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write(
    'once.ini',
    `[vassal]\nexec = /bin/sh -c 'exit 0'\nsocket = 127.0.0.1:${port}\non-demand = true\n`,
  );
  await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'once', 'waiting');
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  t.after(() => sock.destroy());
  const from = emp.lines.length;
  await emp.waitLine(spawnOf('once'), 'spawn', from);
  await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'once', 'waiting after exit 0', from);
  assert.ok(!emp.lines.slice(from).some((l) => l.event === 'backoff' && l.vassal === 'once'));
});

void test('a unix socket vassal, and an IPv6 one', async (t) => {
  const emp = await startEmperor(t);
  const path = join(emp.dir, 'app.sock');
  emp.write('unixy.ini', socketVassal(`unix:${path}`, 'socket-mode = 0600\n'));
  const port = await freePort();
  emp.write('six.ini', socketVassal(`[::1]:${port}`));
  const a = await waitFor(() => get({ socketPath: path }).catch(() => undefined), { what: 'unix answer' });
  assert.equal(a.inherited, true);
  const b = await waitFor(() => get({ host: '::1', port }).catch(() => undefined), { what: 'IPv6 answer' });
  assert.equal(b.inherited, true);
});

void test('a port already in use: the vassal is failed with file, line and reason; others carry on', async (t) => {
  const blocker = createServer();
  await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
  t.after(() => blocker.close());
  const taken = (blocker.address() as { port: number }).port;
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('clash.ini', socketVassal(`127.0.0.1:${taken}`));
  emp.write('fine.ini', socketVassal(`127.0.0.1:${port}`));
  const failed = await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'clash', 'failed');
  assert.match(String(failed.reason), /clash\.ini:3: .*127\.0\.0\.1:\d+.*in use/);
  assert.equal(
    (await waitFor(() => get({ port }).catch(() => undefined), { what: 'fine answers' })).inherited,
    true,
  );
});

void test('a reload that changes backlog rebinds the socket; a renamed socket vassal takes its address over', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('a.ini', socketVassal(`127.0.0.1:${port}`));
  const first = await waitFor(() => get({ port }).catch(() => undefined), { what: 'a answering' });
  let from = emp.lines.length;
  emp.write('a.ini', socketVassal(`127.0.0.1:${port}`, 'backlog = 64\n'));
  const second = await waitFor(
    () =>
      get({ port }).then(
        (a) => (a.pid !== first.pid ? a : undefined),
        () => undefined,
      ),
    { what: 'the new generation answering' },
  );
  assert.equal(second.generation, '2');
  assert.ok(!emp.lines.slice(from).some((l) => l.event === 'failed'), 'never failed');

  // mv a.ini b.ini: a stops and releases the port, b binds it as soon as it is free.
  from = emp.lines.length;
  renameSync(join(emp.vassals, 'a.ini'), join(emp.vassals, 'b.ini'));
  const spawned = await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'b', 'b spawned', from);
  const b = await waitFor(() => get({ port }).catch(() => undefined), { what: 'b answering' });
  assert.equal(b.pid, spawned.pid);
  // b may find the address still held while a stops, and retries: it took over at one of its first
  // backoff steps, not after climbing towards restart-delay-max. Counted in steps, not in ms: a
  // loaded machine stretches a's stop (5 s failed there once).
  const retries = emp.lines
    .slice(from, emp.lines.indexOf(spawned))
    .filter((l) => l.vassal === 'b' && l.event === 'failed')
    .map((l) => l.retry_in_ms as number);
  assert.ok(retries.length <= 3, `b took over after ${retries.length} retries (${retries.join(', ')} ms)`);
});
