// Cron jobs in the pure machine: scheduled with the first generation, a run is a one-shot side
// process whose exit is recorded on its job; `unique-cron` skips while its previous run goes; a
// reload keeps a job whose line is unchanged; a stop unschedules every job and stops its runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVassal, type CronSpec } from '@emperor/config';
import type { Effect } from '../src/machine/types.js';
import { testConfig } from './support/config.js';
import { Drive as BaseDrive } from './support/drive.js';

/** A `cron` (or `unique-cron`) line as the config package reads it, at line `at` of its file. */
function cron(line: string, unique = false, at = 1): CronSpec {
  const key = unique ? 'unique-cron' : 'cron';
  const r = parseVassal(`[vassal]\nexec = sleep 1\n${key} = ${line}\n`, {
    file: '/srv/x.ini',
    env: {},
    cpus: 1,
  });
  assert.ok(r.ok, JSON.stringify(r));
  const spec = r.config.crons[0];
  assert.ok(spec);
  return { ...spec, line: at };
}

/** Its effects keep their log lines: the tests read `cron-skipped` among them. */
class Drive extends BaseDrive {
  constructor(crons: CronSpec[]) {
    super(testConfig({ crons }));
  }
  due(job: number, at: number): Effect[] {
    return this.sendAll({ type: 'timer', timer: { kind: 'cron', index: job }, at });
  }
}

const events = (fx: Effect[]): string[] => fx.flatMap((e) => (e.type === 'log' ? [e.event] : []));

function started(crons: CronSpec[]): { d: Drive; fx: Effect[] } {
  const d = new Drive(crons);
  const fx = d.sendAll({ type: 'start', at: 0 });
  const app = fx.find((e) => e.type === 'spawn');
  assert.ok(app?.type === 'spawn');
  d.sendAll({ type: 'spawned', generation: app.generation, index: app.index, pid: 100, at: 1 });
  return { d, fx };
}

void test('jobs are scheduled with the first generation; a due job spawns a run whose exit is recorded', () => {
  const { d, fx } = started([cron('*/5 * * * * sweep'), cron('@daily report', false, 2)]);
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'schedule-cron' ? [[e.timer.index, e.spec.command]] : [])),
    [
      [0, 'sweep'],
      [1, 'report'],
    ],
  );
  const scheduled = fx.flatMap((e) =>
    e.type === 'log' && e.event === 'cron-scheduled' ? [e.fields.schedule] : [],
  );
  assert.deepEqual(scheduled, ['0,5,10,15,20,25,30,35,40,45,50,55 * * * *', '0 0 * * *']);
  const run = d.due(0, 1000).find((e) => e.type === 'spawn-side');
  assert.ok(run?.type === 'spawn-side');
  assert.deepEqual([run.kind, run.job, run.command], ['cron', 0, 'sweep']);
  d.sendAll({ type: 'spawned', kind: 'cron', generation: 0, index: run.index, pid: 200, at: 1001 });
  assert.equal(d.v.state, 'running');
  assert.deepEqual(
    d.v.sides.map((s) => [s.kind, s.job, s.pid]),
    [['cron', 0, 200]],
  );
  const fx2 = d.sendAll({ type: 'exited', pid: 200, code: 3, signal: null, at: 1500 });
  assert.deepEqual(events(fx2), ['cron-exit']);
  assert.deepEqual(d.v.sides, []);
  const [job] = d.v.crons;
  assert.ok(job);
  assert.deepEqual(job.lastExit, { code: 3, signal: null, at: 1500 });
  assert.equal(job.lastStartAt, 1000);
  assert.ok(!fx2.some((e) => e.type === 'arm'), 'a run is never restarted');
});

void test('unique-cron skips a run while the previous one goes; plain cron overlaps', () => {
  const { d } = started([cron('* * * * * a'), cron('* * * * * b', true, 2)]);
  for (const job of [0, 1]) {
    const run = d.due(job, 1000).find((e) => e.type === 'spawn-side');
    assert.ok(run?.type === 'spawn-side');
    d.sendAll({ type: 'spawned', kind: 'cron', generation: 0, index: run.index, pid: 300 + job, at: 1000 });
  }
  assert.ok(
    d.due(0, 61_000).some((e) => e.type === 'spawn-side'),
    'plain cron runs again',
  );
  const skip = d.due(1, 61_000);
  assert.ok(!skip.some((e) => e.type === 'spawn-side'));
  assert.deepEqual(events(skip), ['cron-skipped']);
  assert.equal(d.v.crons[1]?.skipped, 1);
  d.sendAll({ type: 'exited', pid: 301, code: 0, signal: null, at: 62_000 });
  assert.ok(
    d.due(1, 121_000).some((e) => e.type === 'spawn-side'),
    'runs again once the previous ended',
  );
});

void test('a reload keeps a job whose line is unchanged (even moved), replaces one whose line changed', () => {
  const { d } = started([cron('* * * * * keep'), cron('* * * * * old', false, 2)]);
  const run = d.due(1, 1000).find((e) => e.type === 'spawn-side');
  assert.ok(run?.type === 'spawn-side');
  d.sendAll({ type: 'spawned', kind: 'cron', generation: 0, index: run.index, pid: 400, at: 1000 });
  const fx = d.sendAll({
    type: 'update',
    config: testConfig({ crons: [cron('* * * * * keep', false, 5), cron('0 * * * * new', false, 6)] }),
    at: 2000,
  });
  assert.ok(!fx.some((e) => e.type === 'spawn'), 'no new generation for a change of cron lines');
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'cancel' && e.timer.kind === 'cron' ? [e.timer.index] : [])),
    [1],
  );
  assert.deepEqual(
    fx.flatMap((e) => (e.type === 'schedule-cron' ? [[e.timer.index, e.spec.command]] : [])),
    [[1, 'new']],
  );
  assert.ok(
    fx.some((e) => e.type === 'signal' && e.pid === 400),
    'the run of the gone line is stopped',
  );
  assert.deepEqual(
    d.v.crons.map((j) => [j.id, j.spec.command, j.spec.line]),
    [
      [0, 'keep', 5],
      [1, 'new', 6],
    ],
  );
});

void test('a stop unschedules every job and waits for its runs', () => {
  const { d } = started([cron('* * * * * a')]);
  const run = d.due(0, 1000).find((e) => e.type === 'spawn-side');
  assert.ok(run?.type === 'spawn-side');
  d.sendAll({ type: 'spawned', kind: 'cron', generation: 0, index: run.index, pid: 500, at: 1000 });
  const fx = d.sendAll({ type: 'control', action: 'stop', at: 2000 });
  assert.ok(fx.some((e) => e.type === 'cancel' && e.timer.kind === 'cron'));
  assert.ok(fx.some((e) => e.type === 'signal' && e.pid === 500));
  d.sendAll({ type: 'exited', pid: 100, code: 0, signal: 'SIGTERM', at: 2100 });
  assert.equal(d.v.state, 'stopping', 'waits for the cron run');
  d.sendAll({ type: 'exited', pid: 500, code: null, signal: 'SIGTERM', at: 2200 });
  assert.equal(d.v.state, 'stopped');
  assert.deepEqual(d.v.crons, []);
  assert.deepEqual(
    d.due(0, 61_000).filter((e) => e.type === 'spawn-side'),
    [],
    'no run after the stop',
  );
});
