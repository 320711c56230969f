// Side processes (`attach-daemon`) in the pure machine: a kind of process beside the app's
// instances that never counts for readiness or generations and restarts with its own backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VassalConfig } from '@emperor/config';
import type { Effect } from '../src/machine/types.js';
import { testConfig } from './support/config.js';
import { Drive as BaseDrive, counter } from './support/drive.js';

class Drive extends BaseDrive {
  /** Answers every spawn and spawn-side effect with `spawned`, pids from `next`. */
  spawned(fx: Effect[], at: number, next: () => number): void {
    for (const e of fx) {
      if (e.type === 'spawn')
        this.send({ type: 'spawned', generation: e.generation, index: e.index, pid: next(), at });
      if (e.type === 'spawn-side')
        this.send({ type: 'spawned', kind: 'attach', generation: 0, index: e.index, pid: next(), at });
    }
  }
}

const sideSpawns = (fx: Effect[]): string[] =>
  fx.flatMap((e) => (e.type === 'spawn-side' ? [`${e.index}:${e.command}`] : []));

function started(config: VassalConfig): { d: Drive; pid: () => number } {
  const d = new Drive(config);
  const pid = counter();
  d.spawned(d.send({ type: 'start', at: 0 }), 0, pid);
  return { d, pid };
}

const WORKERS = testConfig({ attachDaemons: ['worker a', 'worker b'] });

void test('side daemons start with the first generation and never count for readiness', () => {
  const d = new Drive(WORKERS);
  const fx = d.send({ type: 'start', at: 0 });
  assert.deepEqual(sideSpawns(fx), ['0:worker a', '1:worker b']);
  assert.equal(fx.filter((e) => e.type === 'spawn').length, 1);
  // The app is ready (`ready = started`) while no side daemon has been spawned yet.
  const app = fx.find((e) => e.type === 'spawn');
  assert.ok(app?.type === 'spawn');
  d.send({ type: 'spawned', generation: app.generation, index: app.index, pid: 100, at: 1 });
  assert.equal(d.v.state, 'running');
  assert.deepEqual(
    d.v.sides.map((s) => [s.index, s.state, s.pid]),
    [
      [0, 'starting', undefined],
      [1, 'starting', undefined],
    ],
  );
  assert.equal(d.v.instances.length, 1);
});

void test('a side daemon that dies restarts after its own backoff; the vassal stays running', () => {
  const { d } = started(WORKERS);
  const a = d.v.sides[0]?.pid ?? -1;
  const fx = d.send({ type: 'exited', pid: a, code: 1, signal: null, at: 500 });
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.backoffStep, 0, 'the vassal’s own backoff is untouched');
  assert.deepEqual(
    fx.filter((e) => e.type === 'arm'),
    [{ type: 'arm', timer: { kind: 'side-backoff', index: 0 }, ms: 1000 }],
  );
  assert.equal(d.v.sides[0]?.state, 'backoff');
  const again = d.send({ type: 'timer', timer: { kind: 'side-backoff', index: 0 }, at: 1500 });
  assert.deepEqual(sideSpawns(again), ['0:worker a']);
  d.send({ type: 'spawned', kind: 'attach', generation: 0, index: 0, pid: 300, at: 1500 });
  assert.deepEqual(
    d.v.sides.map((x) => x.restarts),
    [1, 0],
  );
  // A quick second death doubles its delay.
  const second = d.send({ type: 'exited', pid: 300, code: 1, signal: null, at: 1600 });
  assert.deepEqual(
    second.filter((e) => e.type === 'arm'),
    [{ type: 'arm', timer: { kind: 'side-backoff', index: 0 }, ms: 2000 }],
  );
});

void test('a reload of the app (restart strategy) keeps the side daemons; a changed line replaces only its own', () => {
  const { d, pid } = started(WORKERS);
  const [a, b] = d.v.sides.map((s) => s.pid);
  const app = d.v.instances[0]?.pid ?? -1;
  const fx = d.send({ type: 'update', config: { ...WORKERS, env: { X: '1' } }, at: 100 });
  const signalled = fx.flatMap((e) => (e.type === 'signal' ? [e.pid] : []));
  assert.deepEqual(signalled, [app]);
  // Once the app is gone the next generation starts at once: the side daemons are not waited for.
  const next = d.send({ type: 'exited', pid: app, code: 0, signal: null, at: 200 });
  assert.equal(next.filter((e) => e.type === 'spawn').length, 1);
  assert.deepEqual(sideSpawns(next), []);
  d.spawned(next, 200, pid);
  assert.deepEqual(
    d.v.sides.map((s) => s.pid),
    [a, b],
  );
  // Only `worker b` changed: it is stopped, `worker c` started, the app left alone.
  const changed = d.send({
    type: 'update',
    config: { ...WORKERS, env: { X: '1' }, attachDaemons: ['worker a', 'worker c'] },
    at: 300,
  });
  assert.deepEqual(
    changed.flatMap((e) => (e.type === 'signal' ? [e.pid] : [])),
    [b],
  );
  assert.deepEqual(sideSpawns(changed), ['2:worker c']);
  assert.equal(
    changed.filter((e) => e.type === 'spawn').length,
    0,
    'no new generation for an attach-daemon line',
  );
  assert.equal(d.v.generation, 2);
});

void test('removing the vassal stops its side daemons and disposes of it only once they are gone', () => {
  const { d } = started(WORKERS);
  const app = d.v.instances[0]?.pid ?? -1;
  const [a, b] = d.v.sides.map((s) => s.pid ?? -1) as [number, number];
  const fx = d.send({ type: 'remove', at: 100 });
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'signal' ? [e.pid] : [])),
    [app, a, b],
  );
  d.send({ type: 'exited', pid: app, code: 0, signal: null, at: 200 });
  assert.ok(
    !d.send({ type: 'exited', pid: a, code: 0, signal: null, at: 200 }).some((e) => e.type === 'dispose'),
  );
  const last = d.send({ type: 'exited', pid: b, code: 0, signal: null, at: 300 });
  assert.ok(last.some((e) => e.type === 'dispose'));
  assert.deepEqual(d.v.sides, []);
});

void test('a side daemon in backoff is simply forgotten by a stop; one still being spawned is stopped once spawned', () => {
  const d = new Drive(WORKERS);
  const fx = d.send({ type: 'start', at: 0 });
  const app = fx.find((e) => e.type === 'spawn');
  assert.ok(app?.type === 'spawn');
  d.send({ type: 'spawned', generation: app.generation, index: app.index, pid: 100, at: 1 });
  d.send({ type: 'spawned', kind: 'attach', generation: 0, index: 0, pid: 101, at: 1 });
  d.send({ type: 'exited', pid: 101, code: 1, signal: null, at: 2 });
  const stop = d.send({ type: 'control', action: 'stop', at: 3 });
  assert.ok(stop.some((e) => e.type === 'cancel' && e.timer.kind === 'side-backoff'));
  assert.deepEqual(
    d.v.sides.map((s) => [s.index, s.state]),
    [[1, 'stopping']],
  );
  // Side daemon 1's spawn was still out: it is signalled as soon as it has a pid.
  const late = d.send({ type: 'spawned', kind: 'attach', generation: 0, index: 1, pid: 102, at: 4 });
  assert.ok(late.some((e) => e.type === 'signal' && e.pid === 102));
  d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 5 });
  assert.equal(d.v.state, 'stopping');
  d.send({ type: 'exited', pid: 102, code: 0, signal: null, at: 6 });
  assert.equal(d.v.state, 'stopped');
});
