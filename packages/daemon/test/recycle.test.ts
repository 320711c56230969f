// Recycling in the pure machine (machine/recycle.ts): one instance at a time, start-then-stop
// with owned sockets, stop-then-start without, a failed replacement leaves the old one serving,
// and max-lifetime's jitter keeps the instances of a vassal apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VassalConfig } from '@emperor/config';
import { RECYCLE_RETRY_MS } from '../src/machine/recycle.js';
import type { Effect } from '../src/machine/types.js';
import { testConfig } from './support/config.js';
import { Drive as BaseDrive, counter } from './support/drive.js';

class Drive extends BaseDrive {
  /** Answers every spawn in `fx` with `spawned` (pids from `next`), then `ready`. */
  up(fx: Effect[], at: number, next: () => number): { pids: number[]; fx: Effect[] } {
    const pids: number[] = [];
    const out: Effect[] = [];
    for (const e of fx) {
      if (e.type !== 'spawn') continue;
      const pid = next();
      pids.push(pid);
      out.push(...this.send({ type: 'spawned', generation: e.generation, index: e.index, pid, at }));
    }
    for (const pid of pids) out.push(...this.send({ type: 'ready', pid, at }));
    return { pids, fx: out };
  }
}

const SOCKETS = [
  {
    kind: 'tcp' as const,
    name: undefined,
    host: '127.0.0.1',
    port: 8080,
    address: '127.0.0.1:8080',
    line: 3,
  },
];

/** Two instances (pids 100, 101) serving. */
function serving(overrides: Partial<VassalConfig>): { d: Drive; pid: () => number; startFx: Effect[] } {
  const d = new Drive(testConfig({ processes: 2, ready: { kind: 'notify' }, ...overrides }));
  const pid = counter();
  let fx = d.send({ type: 'start', at: 0 });
  if (fx.some((e) => e.type === 'bind')) fx = [...fx, ...d.send({ type: 'bound', at: 0 })];
  const { fx: upFx } = d.up(fx, 0, pid);
  assert.equal(d.v.state, 'running');
  return { d, pid, startFx: upFx };
}

const signals = (fx: Effect[]): number[] => fx.flatMap((e) => (e.type === 'signal' ? [e.pid] : []));
const spawns = (fx: Effect[]): Effect[] => fx.filter((e) => e.type === 'spawn');

void test('with owned sockets the replacement starts first; the old instance stops only once it is ready', () => {
  const { d, pid } = serving({ sockets: SOCKETS, reload: { kind: 'rolling' } });
  const fx = d.send({
    type: 'recycle',
    pid: 100,
    reason: 'rss 300 MiB > max-rss 200 MiB for 2 samples',
    at: 10,
  });
  assert.deepEqual(signals(fx), [], 'nothing is stopped before the replacement is ready');
  assert.deepEqual(
    spawns(fx).map((e) => e.type === 'spawn' && [e.generation, e.index, e.turn]),
    [[1, 0, 1]],
  );
  assert.equal(d.v.recycles, 1);
  assert.equal(d.v.lastRecycle?.reason, 'rss 300 MiB > max-rss 200 MiB for 2 samples');
  // Only one instance of a vassal at a time.
  assert.deepEqual(d.send({ type: 'recycle', pid: 101, reason: 'again', at: 11 }), []);
  const { pids, fx: readyFx } = d.up(fx, 12, pid);
  assert.deepEqual(signals(readyFx), [100], 'the replaced instance is told to stop at readiness');
  assert.equal(d.v.state, 'running');
  d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 13 });
  assert.deepEqual(
    d.v.instances.map((i) => [i.index, i.pid, i.state]),
    [
      [1, 101, 'running'],
      [0, pids[0], 'running'],
    ],
  );
  assert.equal(d.v.restarts, 0, 'a recycle is not a restart');
  // The next one may go now.
  assert.equal(spawns(d.send({ type: 'recycle', pid: 101, reason: 'again', at: 14 })).length, 1);
});

void test('without sockets the instance stops first and its exit starts the replacement', () => {
  const { d, pid } = serving({});
  const fx = d.send({ type: 'recycle', pid: 101, reason: 'why', at: 10 });
  assert.deepEqual(signals(fx), [101]);
  assert.deepEqual(spawns(fx), []);
  const after = d.send({ type: 'exited', pid: 101, code: 0, signal: null, at: 11 });
  assert.deepEqual(
    spawns(after).map((e) => e.type === 'spawn' && [e.index, e.turn]),
    [[1, 1]],
  );
  assert.deepEqual(d.send({ type: 'recycle', pid: 100, reason: 'not yet', at: 12 }), []);
  d.up(after, 13, pid);
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.instances.length, 2);
});

void test('a replacement that dies before it is ready leaves the old instance serving and pauses recycling', () => {
  const { d, pid } = serving({ sockets: SOCKETS, reload: { kind: 'rolling' } });
  const fx = d.send({ type: 'recycle', pid: 100, reason: 'why', at: 10 });
  const spawn = spawns(fx)[0];
  assert.ok(spawn?.type === 'spawn');
  const newPid = pid();
  d.send({ type: 'spawned', generation: spawn.generation, index: spawn.index, pid: newPid, at: 11 });
  const exitFx = d.send({ type: 'exited', pid: newPid, code: 1, signal: null, at: 12 });
  assert.deepEqual(signals(exitFx), []);
  assert.equal(d.v.state, 'running');
  assert.deepEqual(
    d.v.instances.map((i) => [i.pid, i.state, i.recycling]),
    [
      [100, 'running', undefined],
      [101, 'running', undefined],
    ],
  );
  assert.deepEqual(d.send({ type: 'recycle', pid: 100, reason: 'soon after', at: 13 }), []);
  const later = 12 + d.v.config.restartDelayMaxMs;
  assert.equal(spawns(d.send({ type: 'recycle', pid: 100, reason: 'later', at: later })).length, 1);
});

void test('recycle is ignored while the vassal reloads, backs off or stops (the table)', () => {
  const { d } = serving({});
  d.send({ type: 'exited', pid: 101, code: 1, signal: null, at: 10 });
  assert.equal(d.v.state, 'backoff');
  assert.deepEqual(d.send({ type: 'recycle', pid: 100, reason: 'x', at: 11 }), []);
  d.send({ type: 'control', action: 'stop', at: 12 });
  assert.deepEqual(d.send({ type: 'recycle', pid: 100, reason: 'x', at: 13 }), []);
  assert.equal(d.v.recycles, 0);
});

void test('max-lifetime: each instance gets its own lifetime timer, 90-100 % of it, never the same two', () => {
  const lifetime = 60_000;
  const { startFx } = serving({ processes: 4, maxLifetimeMs: lifetime, sockets: SOCKETS });
  const arms = startFx.flatMap((e) =>
    e.type === 'arm' && e.timer.kind === 'lifetime' ? [{ pid: e.timer.pid, ms: e.ms }] : [],
  );
  assert.equal(arms.length, 4);
  for (const a of arms) assert.ok(a.ms > lifetime * 0.9 - 1 && a.ms <= lifetime, `${a.ms}`);
  const sorted = arms.map((a) => a.ms).sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++)
    assert.ok((sorted[i] ?? 0) - (sorted[i - 1] ?? 0) >= (lifetime * 0.1) / 4 - 1, sorted.join(','));
});

void test('max-lifetime: the timer replaces its instance; one due during another recycle waits its turn', () => {
  const { d, pid } = serving({ maxLifetimeMs: 60_000, sockets: SOCKETS, reload: { kind: 'rolling' } });
  const fx = d.send({ type: 'timer', timer: { kind: 'lifetime', pid: 100 }, at: 58_000 });
  assert.equal(spawns(fx).length, 1);
  assert.match(d.v.lastRecycle?.reason ?? '', /^ran 58 s, max-lifetime 60 s$/);
  const second = d.send({ type: 'timer', timer: { kind: 'lifetime', pid: 101 }, at: 58_500 });
  assert.deepEqual(second, [{ type: 'arm', timer: { kind: 'lifetime', pid: 101 }, ms: RECYCLE_RETRY_MS }]);
  const { pids, fx: readyFx } = d.up(fx, 59_000, pid);
  const lifetimeArm = readyFx.find((e) => e.type === 'arm' && e.timer.kind === 'lifetime');
  assert.ok(lifetimeArm?.type === 'arm' && lifetimeArm.timer.kind === 'lifetime');
  assert.equal(lifetimeArm.timer.pid, pids[0], "the replacement's own lifetime starts");
});
