import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SocketSpec, VassalConfig } from '@emperor/config';
import { transition } from '../src/machine/transition.js';
import type { Effect, VassalEvent } from '../src/machine/types.js';
import { testConfig } from './support/config.js';
import { Drive as BaseDrive, counter } from './support/drive.js';

/** Drives a machine through events, keeping every effect for assertions. */
class Drive extends BaseDrive {
  /** Feeds back the `spawned` outcome of every spawn effect in `fx`, with pids from `next`. */
  spawned(fx: Effect[], at: number, next: () => number): number[] {
    const pids: number[] = [];
    for (const e of fx) {
      if (e.type === 'spawn') {
        const pid = next();
        pids.push(pid);
        this.send({ type: 'spawned', generation: e.generation, index: e.index, pid, at });
      }
    }
    return pids;
  }
  /** `start`, answering a `bind` effect with `bound` as the runner does; returns every effect. */
  start(at: number): Effect[] {
    const fx = this.send({ type: 'start', at });
    return fx.some((e) => e.type === 'bind') ? [...fx, ...this.send({ type: 'bound', at })] : fx;
  }
}

const types = (fx: Effect[]): string[] => fx.map((e) => e.type);

function tcp(port: number): SocketSpec {
  return { kind: 'tcp', name: undefined, host: '127.0.0.1', port, address: `127.0.0.1:${port}`, line: 3 };
}
const TCP = [tcp(8080)];

/** A vassal with an owned socket that reloads by rolling and is ready on READY=1. */
function rollingConfig(overrides: Partial<VassalConfig> = {}): VassalConfig {
  return testConfig({ sockets: TCP, reload: { kind: 'rolling' }, ready: { kind: 'notify' }, ...overrides });
}

/** A machine of `config` started, every instance (pids 100 on) ready: a generation serving. */
function serving(config: VassalConfig): { d: Drive; pid: () => number } {
  const d = new Drive(config);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  for (const i of d.v.instances) if (i.pid !== undefined) d.send({ type: 'ready', pid: i.pid, at: 1 });
  return { d, pid };
}

void test('start spawns one instance per process and is running once all are spawned (ready = started)', () => {
  const d = new Drive(testConfig({ processes: 3 }));
  const fx = d.send({ type: 'start', at: 0 });
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'spawn' ? [[e.generation, e.index]] : [])),
    [
      [1, 0],
      [1, 1],
      [1, 2],
    ],
  );
  assert.equal(d.v.state, 'starting');
  d.spawned(fx, 1, counter());
  assert.equal(d.v.state, 'running');
  assert.deepEqual(
    d.v.instances.map((i) => [i.pid, i.state]),
    [
      [100, 'running'],
      [101, 'running'],
      [102, 'running'],
    ],
  );
});

void test('an instance that exits by itself is restarted with doubling backoff, reset after 10 s up', () => {
  const d = new Drive(testConfig({ restartDelayMs: 1000, restartDelayMaxMs: 4000 }));
  const pid = counter();
  d.spawned(d.send({ type: 'start', at: 0 }), 0, pid);
  let at = 100;
  const delays: number[] = [];
  for (let round = 0; round < 5; round++) {
    const p = d.v.instances[0]?.pid ?? -1;
    const fx = d.send({ type: 'exited', pid: p, code: 1, signal: null, at });
    assert.ok(
      fx.some((e) => e.type === 'kill-group' && e.pid === p),
      'leftovers of the group are killed',
    );
    assert.equal(d.v.state, 'backoff');
    const arm = fx.find((e) => e.type === 'arm' && e.timer.kind === 'backoff');
    assert.ok(arm && arm.type === 'arm');
    delays.push(arm.ms);
    at += arm.ms;
    d.spawned(d.send({ type: 'timer', timer: { kind: 'backoff' }, at }), at, pid);
    assert.equal(d.v.state, 'running');
    at += 100;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 4000, 4000]);
  assert.equal(d.v.restarts, 5);
  // Up for 10 s: the next crash starts again from restart-delay.
  at += 10_000;
  const fx = d.send({ type: 'exited', pid: d.v.instances[0]?.pid ?? -1, code: null, signal: 'SIGKILL', at });
  const arm = fx.find((e) => e.type === 'arm');
  assert.equal(arm?.type === 'arm' && arm.ms, 1000);
  assert.deepEqual(d.v.lastExit, { code: null, signal: 'SIGKILL', at });
});

void test('restart policies: no and on-failure', () => {
  const no = new Drive(testConfig({ restart: 'no' }));
  no.spawned(no.send({ type: 'start', at: 0 }), 0, counter());
  no.send({ type: 'exited', pid: 100, code: 3, signal: null, at: 5 });
  assert.equal(no.v.state, 'stopped');

  const clean = new Drive(testConfig({ restart: 'on-failure' }));
  clean.spawned(clean.send({ type: 'start', at: 0 }), 0, counter());
  clean.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 5 });
  assert.equal(clean.v.state, 'stopped');

  const crash = new Drive(testConfig({ restart: 'on-failure' }));
  crash.spawned(crash.send({ type: 'start', at: 0 }), 0, counter());
  crash.send({ type: 'exited', pid: 100, code: 2, signal: null, at: 5 });
  assert.equal(crash.v.state, 'backoff');
});

void test('remove: stop-signal to the main process, SIGKILL to the group after stop-timeout, then dispose', () => {
  const d = new Drive(testConfig({ stopSignal: 'SIGINT', stopTimeoutMs: 5000 }));
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  const fx = d.send({ type: 'remove', at: 10 });
  assert.deepEqual(
    fx.filter((e) => e.type === 'signal' || e.type === 'arm'),
    [
      { type: 'signal', pid: 100, signal: 'SIGINT' },
      { type: 'arm', timer: { kind: 'stop-timeout', pid: 100 }, ms: 5000 },
    ],
  );
  assert.equal(d.v.state, 'stopping');
  assert.deepEqual(d.send({ type: 'timer', timer: { kind: 'stop-timeout', pid: 100 }, at: 5010 }), [
    { type: 'kill-group', pid: 100 },
  ]);
  const last = d.send({ type: 'exited', pid: 100, code: null, signal: 'SIGKILL', at: 5011 });
  assert.ok(types(last).includes('dispose'));
  assert.ok(
    last.some((e) => e.type === 'kill-group'),
    'the group is swept after the main process exits',
  );
});

void test('reload = restart: the old generation is gone before the new one starts', () => {
  const d = new Drive(testConfig());
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  const next = testConfig({ exec: 'app --v2', argv: ['app', '--v2'] });
  const fx = d.send({ type: 'update', config: next, at: 10 });
  assert.ok(!types(fx).includes('spawn'));
  assert.equal(d.v.state, 'reloading');
  const after = d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 20 });
  const spawn = after.find((e) => e.type === 'spawn');
  assert.ok(spawn?.type === 'spawn');
  assert.equal(spawn.generation, 2);
  assert.equal(spawn.config, next);
});

void test('rolling reload: the new generation starts beside the old, which is retired once the new one is ready', () => {
  const cfg = rollingConfig({ processes: 2 });
  const { d, pid } = serving(cfg);
  assert.equal(d.v.state, 'running');
  const fx = d.send({ type: 'update', config: cfg, at: 10 });
  assert.equal(fx.filter((e) => e.type === 'spawn').length, 2);
  assert.ok(!types(fx).includes('signal'), 'the old generation keeps serving');
  assert.equal(d.v.state, 'reloading');
  d.spawned(fx, 11, pid);
  d.send({ type: 'ready', pid: 102, at: 12 });
  assert.equal(d.v.state, 'reloading');
  const retire = d.send({ type: 'ready', pid: 103, at: 13 });
  assert.equal(d.v.state, 'running');
  assert.deepEqual(
    retire.flatMap((e) => (e.type === 'signal' ? [e.pid] : [])),
    [100, 101],
  );
  assert.equal(d.v.generation, 2);
});

void test('a new instance that was ready and exits before the rest of its generation is: the reload is abandoned, the old generation serves on', () => {
  const cfg = rollingConfig({ processes: 2 });
  const { d, pid } = serving(cfg);
  d.spawned(d.send({ type: 'update', config: cfg, at: 10 }), 10, pid); // 102, 103
  d.send({ type: 'ready', pid: 102, at: 11 });
  const fx = d.send({ type: 'exited', pid: 102, code: 1, signal: null, at: 12 });
  assert.ok(
    !fx.some((e) => e.type === 'arm' && e.timer.kind === 'backoff'),
    'no backoff beside a serving generation',
  );
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'signal' ? [e.pid] : [])),
    [103],
  );
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.match(d.v.reason ?? '', /reload failed: instance 0 exited before its generation was ready/);
  // The next change of the file rolls again instead of restarting the serving generation.
  const again = d.send({ type: 'update', config: cfg, at: 20 });
  assert.ok(!again.some((e) => e.type === 'signal'), 'the serving generation is not stopped');
  assert.equal(d.v.state, 'reloading');
});

void test('rolling reload that never becomes ready: the old generation keeps serving', () => {
  const cfg = rollingConfig({ readyTimeoutMs: 500 });
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'ready', pid: 100, at: 1 });
  d.spawned(d.send({ type: 'update', config: cfg, at: 10 }), 10, pid);
  const fx = d.send({ type: 'timer', timer: { kind: 'ready-timeout', pid: 101 }, at: 510 });
  assert.deepEqual(
    fx.filter((e) => e.type === 'signal'),
    [{ type: 'signal', pid: 101, signal: 'SIGTERM' }],
  );
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.match(d.v.reason ?? '', /reload failed: instance 0 not ready within 0.5 s/);
  d.send({ type: 'exited', pid: 101, code: 0, signal: null, at: 520 });
  assert.deepEqual(
    d.v.instances.map((i) => i.pid),
    [100],
  );
});

void test('a spawn that cannot happen is failed, retried every restart-delay-max and on the next change', () => {
  const d = new Drive(testConfig({ restartDelayMaxMs: 60_000 }));
  d.send({ type: 'start', at: 0 });
  const fx = d.send({
    type: 'spawn-failed',
    generation: 1,
    index: 0,
    reason: 'program app not found on PATH',
    at: 1,
  });
  assert.equal(d.v.state, 'failed');
  assert.equal(d.v.reason, 'program app not found on PATH');
  assert.ok(fx.some((e) => e.type === 'arm' && e.timer.kind === 'retry' && e.ms === 60_000));
  const retry = d.send({ type: 'timer', timer: { kind: 'retry' }, at: 60_001 });
  assert.ok(types(retry).includes('spawn'));
  d.send({ type: 'spawn-failed', generation: 2, index: 0, reason: 'still missing', at: 60_002 });
  const update = d.send({ type: 'update', config: testConfig(), at: 70_000 });
  assert.ok(types(update).includes('spawn'));
});

void test('exit status 127 or 126 from a wrapper shell counts as cannot start', () => {
  const d = new Drive(testConfig());
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  d.send({ type: 'exited', pid: 100, code: 127, signal: null, at: 3 });
  assert.equal(d.v.state, 'failed');
  assert.match(d.v.reason ?? '', /127/);
});

void test('control stop holds the vassal until start or the next change of its file', () => {
  const d = new Drive(testConfig());
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  d.send({ type: 'control', action: 'stop', at: 1 });
  d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 2 });
  assert.equal(d.v.state, 'stopped');
  assert.ok(types(d.send({ type: 'update', config: testConfig(), at: 3 })).includes('spawn'));
});

void test('control restart bypasses a pending backoff', () => {
  const d = new Drive(testConfig());
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  d.send({ type: 'exited', pid: 100, code: 1, signal: null, at: 1 });
  assert.equal(d.v.state, 'backoff');
  const fx = d.send({ type: 'control', action: 'restart', at: 2 });
  assert.ok(fx.some((e) => e.type === 'cancel' && e.timer.kind === 'backoff'));
  assert.ok(types(fx).includes('spawn'));
  assert.equal(d.v.backoffStep, 0);
});

void test('signal reload: the running processes get the signal and keep their generation', () => {
  const cfg = testConfig({ reload: { kind: 'signal', signal: 'SIGHUP' } });
  const d = new Drive(cfg);
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  const fx = d.send({
    type: 'update',
    config: testConfig({ reload: { kind: 'signal', signal: 'SIGHUP' } }),
    at: 1,
  });
  assert.deepEqual(fx, [{ type: 'signal', pid: 100, signal: 'SIGHUP' }]);
  assert.equal(d.v.generation, 1);
  // A changed command line cannot be applied by a signal: the vassal restarts instead.
  const changed = testConfig({ reload: { kind: 'signal', signal: 'SIGHUP' }, argv: ['app', '-v'] });
  assert.ok(!types(d.send({ type: 'update', config: changed, at: 2 })).includes('spawn'));
  assert.equal(d.v.state, 'reloading');
});

void test('a stop that arrives before the spawn outcome still signals the new process', () => {
  const d = new Drive(testConfig());
  const start = d.send({ type: 'start', at: 0 });
  d.send({ type: 'remove', at: 0 });
  d.spawned(start, 1, counter());
  assert.ok(d.effects.some((e) => e.type === 'signal' && e.pid === 100));
  assert.ok(types(d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 2 })).includes('dispose'));
});

void test('an unknown process reported as spawned is killed, never leaked', () => {
  const d = new Drive(testConfig());
  assert.deepEqual(d.send({ type: 'spawned', generation: 9, index: 0, pid: 4242, at: 0 }), [
    { type: 'kill-group', pid: 4242 },
  ]);
});

void test('on-demand vassals spawn nothing at start', () => {
  const d = new Drive(testConfig({ onDemand: true, sockets: TCP }));
  assert.deepEqual(
    d.start(0).filter((e) => e.type === 'spawn'),
    [],
  );
  assert.equal(d.v.state, 'waiting');
});

void test('owned sockets are bound before the first spawn; a failed bind is `failed`, sockets closed, retried', () => {
  const d = new Drive(testConfig({ sockets: TCP }));
  const fx = d.send({ type: 'start', at: 0 });
  assert.deepEqual(types(fx), ['cancel', 'cancel', 'bind']);
  assert.equal(d.v.state, 'starting');
  const failed = d.send({ type: 'bind-failed', reason: 'address already in use', at: 1 });
  assert.equal(d.v.state, 'failed');
  assert.equal(d.v.reason, 'address already in use');
  assert.ok(types(failed).includes('close-sockets'));
  assert.ok(failed.some((e) => e.type === 'arm' && e.timer.kind === 'retry'));
  const retry = d.send({ type: 'timer', timer: { kind: 'retry' }, at: 60_001 });
  assert.ok(types(retry).includes('bind'), 'the retry binds again');
});

void test('sockets stay bound across a restart of the same sockets, and are closed by stop', () => {
  const cfg = testConfig({ sockets: TCP });
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  assert.equal(d.v.bound, true);
  const restart = d.send({ type: 'control', action: 'restart', at: 5 });
  const gone = d.send({ type: 'exited', pid: 100, code: null, signal: 'SIGTERM', at: 6 });
  assert.ok(![...restart, ...gone].some((e) => e.type === 'bind' || e.type === 'close-sockets'));
  assert.equal(gone.filter((e) => e.type === 'spawn').length, 1);
  d.spawned(gone, 6, pid);
  d.send({ type: 'control', action: 'stop', at: 7 });
  const stopped = d.send({ type: 'exited', pid: 101, code: null, signal: 'SIGTERM', at: 8 });
  assert.equal(d.v.state, 'stopped');
  assert.ok(types(stopped).includes('close-sockets'), 'stopped: clients are refused');
});

void test('new sockets in an update cannot roll: the vassal restarts and binds them', () => {
  const cfg = testConfig({ sockets: TCP, reload: { kind: 'rolling' } });
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  const moved = testConfig({
    sockets: [tcp(9090)],
    reload: { kind: 'rolling' },
  });
  const fx = d.send({ type: 'update', config: moved, at: 5 });
  assert.ok(
    fx.some((e) => e.type === 'signal' && e.pid === 100),
    'the old generation stops first',
  );
  const after = d.send({ type: 'exited', pid: 100, code: null, signal: 'SIGTERM', at: 6 });
  assert.ok(after.some((e) => e.type === 'bind' && e.config === moved));
});

void test('on-demand: a waiting client starts a generation; idle probes put it back to waiting', () => {
  const cfg = testConfig({ sockets: TCP, onDemand: true, idleMs: 2000 });
  const d = new Drive(cfg);
  const pid = counter();
  const fx = d.start(0);
  assert.ok(types(fx).includes('watch-sockets'));
  assert.equal(d.v.state, 'waiting');
  const woke = d.send({ type: 'activate', at: 10 });
  assert.equal(woke.filter((e) => e.type === 'spawn').length, 1);
  const running = d.send({ type: 'spawned', generation: 1, index: 0, pid: pid(), at: 11 });
  assert.equal(d.v.state, 'running');
  assert.ok(running.some((e) => e.type === 'arm' && e.timer.kind === 'idle'));
  assert.deepEqual(types(d.send({ type: 'timer', timer: { kind: 'idle' }, at: 511 })), ['probe-idle']);
  d.send({ type: 'idle-probe', busy: true, at: 1000 });
  assert.equal(d.v.state, 'running', 'a client was seen');
  d.send({ type: 'idle-probe', busy: false, at: 2500 });
  assert.equal(d.v.state, 'running', 'not idle for 2 s yet');
  const sleep = d.send({ type: 'idle-probe', busy: false, at: 3000 });
  assert.equal(d.v.state, 'stopping');
  assert.ok(sleep.some((e) => e.type === 'signal' && e.pid === 100));
  const back = d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 3100 });
  assert.equal(d.v.state, 'waiting');
  assert.ok(types(back).includes('watch-sockets'));
  assert.ok(!types(back).includes('close-sockets'), 'the sockets stay bound while it sleeps');
});

void test('watchdog: armed at spawn, re-armed by each heartbeat, and a silent instance is killed and restarted', () => {
  const d = new Drive(testConfig({ watchdogMs: 500, restartDelayMs: 100 }));
  d.send({ type: 'start', at: 0 });
  const fx = d.send({ type: 'spawned', generation: 1, index: 0, pid: 100, at: 1 });
  assert.ok(fx.some((e) => e.type === 'arm' && e.timer.kind === 'watchdog' && e.ms === 500));
  const beat = d.send({ type: 'heartbeat', pid: 100, at: 300 });
  assert.deepEqual(types(beat), ['arm']);
  const fired = d.send({ type: 'timer', timer: { kind: 'watchdog', pid: 100 }, at: 800 });
  assert.deepEqual(fired, [{ type: 'kill-group', pid: 100 }]);
  assert.match(String(d.v.reason), /WATCHDOG=1/);
  const exit = d.send({ type: 'exited', pid: 100, code: null, signal: 'SIGKILL', at: 801 });
  assert.ok(exit.some((e) => e.type === 'cancel' && e.timer.kind === 'watchdog'));
  assert.equal(d.v.state, 'backoff');
});

void test('an abandoned rolling reload restores the serving config: a later crash restarts the old version', () => {
  const cfg = rollingConfig();
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'ready', pid: 100, at: 1 });
  const broken = rollingConfig({ argv: ['broken'], processes: 3, readyTimeoutMs: 500 });
  const fx = d.send({ type: 'update', config: broken, at: 10 });
  assert.equal(fx.filter((e) => e.type === 'spawn').length, 3);
  d.spawned(fx, 10, pid);
  d.send({ type: 'timer', timer: { kind: 'ready-timeout', pid: 101 }, at: 600 });
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.equal(d.v.config, cfg, 'the serving config is back');
  const crash = d.send({ type: 'exited', pid: 100, code: 1, signal: null, at: 700 });
  assert.equal(d.v.state, 'backoff');
  const respawn = d.send({ type: 'timer', timer: { kind: 'backoff' }, at: 1700 });
  const spawns = respawn.filter((e) => e.type === 'spawn');
  assert.equal(spawns.length, 1, 'one slot, as the serving config says');
  assert.equal(spawns[0]?.type === 'spawn' && spawns[0].config, cfg);
  assert.ok(crash.length > 0);
});

void test('start or reload while stopping starts again once the old processes are gone', () => {
  const d = new Drive(testConfig());
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'control', action: 'stop', at: 5 });
  assert.equal(d.v.state, 'stopping');
  d.send({ type: 'control', action: 'start', at: 6 });
  const gone = d.send({ type: 'exited', pid: 100, code: null, signal: 'SIGTERM', at: 7 });
  assert.equal(gone.filter((e) => e.type === 'spawn').length, 1);
  d.spawned(gone, 7, pid);
  assert.equal(d.v.state, 'running');
});

void test('restart = no with processes = 2: an instance that exits stays down and the rest still become running', () => {
  const d = new Drive(testConfig({ processes: 2, restart: 'no', ready: { kind: 'notify' } }));
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 5 });
  assert.equal(d.v.state, 'starting');
  d.send({ type: 'ready', pid: 101, at: 6 });
  assert.equal(d.v.state, 'running');
});

void test('a failed bind is retried with backoff, not after restart-delay-max', () => {
  const d = new Drive(testConfig({ sockets: TCP, restartDelayMs: 1000, restartDelayMaxMs: 60_000 }));
  d.send({ type: 'start', at: 0 });
  const first = d.send({ type: 'bind-failed', reason: 'in use', at: 1 });
  assert.ok(first.some((e) => e.type === 'arm' && e.timer.kind === 'retry' && e.ms === 1000));
  d.send({ type: 'timer', timer: { kind: 'retry' }, at: 1001 });
  const second = d.send({ type: 'bind-failed', reason: 'in use', at: 1002 });
  assert.ok(second.some((e) => e.type === 'arm' && e.timer.kind === 'retry' && e.ms === 2000));
});

void test('a reload during a rolling reload drops the half-started generation; the serving one stays until the next is ready', () => {
  const cfg = rollingConfig();
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'ready', pid: 100, at: 1 });
  const v2 = rollingConfig({ argv: ['v2'] });
  d.spawned(d.send({ type: 'update', config: v2, at: 10 }), 10, pid);
  const v3 = rollingConfig({ argv: ['v3'] });
  const fx = d.send({ type: 'update', config: v3, at: 20 });
  assert.ok(
    fx.some((e) => e.type === 'signal' && e.pid === 101),
    'the half-started generation 2 stops',
  );
  assert.ok(!fx.some((e) => e.type === 'signal' && e.pid === 100), 'generation 1 keeps serving');
  assert.equal(d.v.state, 'reloading');
  d.spawned(fx, 20, pid);
  // Generation 3 fails to start: generation 1 serves on, with its own config.
  d.send({ type: 'exited', pid: 102, code: 1, signal: null, at: 30 });
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.equal(d.v.config, cfg);
});

void test('restart = no: a new generation that exits before it is ready is abandoned, the old one serves on', () => {
  const cfg = rollingConfig({ restart: 'no' });
  const d = new Drive(cfg);
  const pid = counter();
  d.spawned(d.start(0), 0, pid);
  d.send({ type: 'ready', pid: 100, at: 1 });
  const broken = testConfig({ ...cfg, argv: ['broken'] });
  d.spawned(d.send({ type: 'update', config: broken, at: 10 }), 10, pid);
  const fx = d.send({ type: 'exited', pid: 101, code: 1, signal: null, at: 20 });
  assert.ok(!fx.some((e) => e.type === 'signal' && e.pid === 100), 'the serving instance is not stopped');
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.match(String(d.v.reason), /exited before it was ready/);
});

void test('watchdog: runs from readiness, and the old generation keeps its own period during a reload', () => {
  const cfg = rollingConfig({ watchdogMs: 500 });
  const d = new Drive(cfg);
  const pid = counter();
  const spawned = d.spawned(d.start(0), 0, pid);
  assert.deepEqual(spawned, [100]);
  assert.ok(!d.effects.some((e) => e.type === 'arm' && e.timer.kind === 'watchdog'), 'not before READY');
  const ready = d.send({ type: 'ready', pid: 100, at: 1 });
  assert.ok(ready.some((e) => e.type === 'arm' && e.timer.kind === 'watchdog' && e.ms === 500));
  const noWatchdog = rollingConfig();
  d.spawned(d.send({ type: 'update', config: noWatchdog, at: 10 }), 10, pid);
  const beat = d.send({ type: 'heartbeat', pid: 100, at: 20 });
  assert.ok(
    beat.some((e) => e.type === 'arm' && e.timer.kind === 'watchdog' && e.ms === 500),
    "the serving instance's heartbeat still counts, with its own period",
  );
});

void test('every spawn-failed line of a failed reload names the generation of its own instance', () => {
  const cfg = rollingConfig({ processes: 2 });
  const { d } = serving(cfg);
  d.send({ type: 'update', config: rollingConfig({ processes: 2, argv: ['gunicron'] }), at: 10 });
  const logged: Effect[] = [];
  for (const index of [0, 1]) {
    const e: VassalEvent = { type: 'spawn-failed', generation: 2, index, reason: 'no gunicron', at: 11 };
    const t = transition(d.v, e);
    d.v = t.vassal;
    logged.push(...t.effects);
  }
  const lines = logged.flatMap((e) => (e.type === 'log' && e.event === 'spawn-failed' ? [e.fields] : []));
  assert.deepEqual(
    lines.map((f) => [f.instance, f.generation]),
    [
      [0, 2],
      [1, 2],
    ],
  );
  assert.equal(d.v.generation, 1, 'the old generation serves on');
});

void test('a reload or restart whose config cannot be spawned stops nothing and keeps the serving generation', () => {
  const d = new Drive(testConfig());
  d.spawned(d.send({ type: 'start', at: 0 }), 0, counter());
  assert.equal(d.v.state, 'running');
  const typo = testConfig({ argv: ['pythn3', 'app.py'] });
  const problem = 'program pythn3 not found on PATH';
  const fx = d.send({ type: 'update', config: typo, at: 10, unrunnable: problem });
  assert.deepEqual(fx, [], 'nothing stopped, nothing spawned');
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.generation, 1);
  assert.equal(d.v.lastGeneration, 2, 'the attempt used up its number');
  assert.equal(d.v.reason, `reload failed: ${problem}`);
  assert.equal(d.v.fileConfig, typo);
  assert.notEqual(d.v.config, typo);
  // `emperor restart` and `emperor reload` apply the file as it is now: still unrunnable.
  assert.deepEqual(d.send({ type: 'control', action: 'restart', at: 20, unrunnable: problem }), []);
  assert.equal(d.v.reason, `restart failed: ${problem}`);
  assert.deepEqual(d.send({ type: 'control', action: 'reload', at: 30, unrunnable: problem }), []);
  assert.equal(d.v.lastGeneration, 4);
  // The program is installed: the same reload now restarts into the file's version.
  d.send({ type: 'control', action: 'reload', at: 40 });
  const up = d.send({ type: 'exited', pid: 100, code: 0, signal: null, at: 50 });
  const spawn = up.find((e) => e.type === 'spawn');
  assert.ok(spawn?.type === 'spawn');
  assert.equal(spawn.config, typo);
  assert.equal(spawn.generation, 5);
});

void test('the reason of a reload that could not start stays while the older version serves', () => {
  const d = new Drive(testConfig({ restartDelayMs: 100 }));
  const pid = counter();
  d.spawned(d.send({ type: 'start', at: 0 }), 0, pid);
  d.send({ type: 'update', config: testConfig({ argv: ['gunicron'] }), at: 10, unrunnable: 'no gunicron' });
  // The old instance crashes and is restarted from backoff: still not the file's version.
  d.send({ type: 'exited', pid: 100, code: 1, signal: null, at: 20 });
  d.spawned(d.send({ type: 'timer', timer: { kind: 'backoff' }, at: 120 }), 120, pid);
  assert.equal(d.v.state, 'running');
  assert.equal(d.v.reason, 'reload failed: no gunicron');
});

void test('the last exit stays while the vassal restarts, and goes once it runs again', () => {
  const d = new Drive(testConfig({ ready: { kind: 'notify' }, restartDelayMs: 1000 }));
  const pid = counter();
  d.spawned(d.send({ type: 'start', at: 0 }), 0, pid);
  d.send({ type: 'ready', pid: 100, at: 10 });
  d.send({ type: 'exited', pid: 100, code: 1, signal: null, at: 100 });
  assert.deepEqual(d.v.lastExit, { code: 1, signal: null, at: 100 });
  d.spawned(d.send({ type: 'timer', timer: { kind: 'backoff' }, at: 1100 }), 1100, pid);
  assert.equal(d.v.state, 'starting');
  assert.deepEqual(d.v.lastExit, { code: 1, signal: null, at: 100 }, 'still what explains the restart');
  d.send({ type: 'ready', pid: 101, at: 1200 });
  assert.equal(d.v.state, 'running');
  // A later failure (a program gone missing) must not be explained by this crash from before.
  assert.equal(d.v.lastExit, undefined);
});
