// When cron jobs run (issue #13): the next run from parsed fields (crontab and uWSGI syntax),
// DST in a real time zone, and a timer on a controllable clock that makes up no burst of runs
// after the wall clock jumps forward and repeats none after a small step back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseVassal } from '@emperor/config';
import {
  BIG_STEP_BACK_MS,
  CronTimer,
  nextRun,
  type CronTimes,
  type TimerClock,
} from '../src/schedule/cron-schedule.js';

/** The cron fields of a `cron = LINE` key, read by the config package as a vassal file would be. */
function times(line: string): CronTimes {
  const parsed = parseVassal(`[vassal]\nexec = sleep 1\ncron = ${line}\n`, {
    file: '/srv/x.ini',
    env: {},
    cpus: 1,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  const spec = parsed.config.crons[0];
  assert.ok(spec);
  return spec;
}

const iso = (d: Date | undefined): string | undefined => d?.toISOString();

void test('next run: crontab and uWSGI syntax, in UTC', () => {
  const at = new Date('2026-12-02T10:07:30Z');
  assert.equal(iso(nextRun(times('*/5 * * * * job'), at, 'UTC')), '2026-12-02T10:10:00.000Z');
  assert.equal(iso(nextRun(times('-5 -1 -1 -1 -1 job'), at, 'UTC')), '2026-12-02T10:10:00.000Z');
  assert.equal(iso(nextRun(times('@daily job'), at, 'UTC')), '2026-12-03T00:00:00.000Z');
  assert.equal(iso(nextRun(times('30 2 * * mon-fri job'), at, 'UTC')), '2026-12-03T02:30:00.000Z');
});

void test('next run: day of month OR weekday when both are restricted, AND when one is `*` (crontab(5))', () => {
  const at = new Date('2026-12-20T12:00:00Z'); // a Sunday
  // 1st of the month or a Monday: Monday 21st comes first, then Monday 28th, then Friday 1 Jan.
  const either = times('0 0 1 * 1 job');
  const runs: string[] = [];
  for (let d: Date | undefined = at, i = 0; i < 3 && d; i++) {
    d = nextRun(either, d, 'UTC');
    runs.push(iso(d) ?? '');
  }
  assert.deepEqual(runs, [
    '2026-12-21T00:00:00.000Z',
    '2026-12-28T00:00:00.000Z',
    '2027-01-01T00:00:00.000Z',
  ]);
  // `*/2` in the day field counts as `*` for that rule: odd days that are Mondays (after Monday
  // the 21st: not Wednesday the 23rd, as OR would have it, but Monday 11 January).
  const afterMonday = new Date('2026-12-21T12:00:00Z');
  assert.equal(iso(nextRun(times('0 0 */2 * 1 job'), afterMonday, 'UTC')), '2027-01-11T00:00:00.000Z');
});

void test('DST in Europe/Berlin: a time skipped by spring-forward runs after the gap; a repeated one runs once', () => {
  const t = times('30 2 * * * job');
  // 2027-03-28 02:00 CET -> 03:00 CEST: 02:30 does not exist that day.
  assert.equal(
    iso(nextRun(t, new Date('2027-03-27T12:00:00Z'), 'Europe/Berlin')),
    '2027-03-28T01:00:00.000Z',
  );
  // 2027-10-31 03:00 CEST -> 02:00 CET: 02:30 happens twice; the job runs at the first only.
  const first = nextRun(t, new Date('2027-10-30T12:00:00Z'), 'Europe/Berlin');
  assert.equal(iso(first), '2027-10-31T00:30:00.000Z');
  assert.equal(iso(nextRun(t, first ?? new Date(), 'Europe/Berlin')), '2027-11-01T01:30:00.000Z');
});

/** A wall clock that can jump, and timers on a monotonic clock that only `advance` moves. */
class FakeClock implements TimerClock {
  wall: number;
  mono = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(start: string) {
    this.wall = Date.parse(start);
  }
  now(): number {
    return this.wall;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.mono + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  /** Both clocks move; timers fire in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = [...this.#timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.wall += due[1].at - this.mono;
      this.mono = due[1].at;
      due[1].fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
  /** The wall clock steps (NTP, `date -s`, a resume); the monotonic one does not. */
  jump(ms: number): void {
    this.wall += ms;
  }
}

const MIN = 60_000;

function timerOn(line: string, start: string): { clock: FakeClock; runs: string[]; timer: CronTimer } {
  const clock = new FakeClock(start);
  const runs: string[] = [];
  const timer = new CronTimer(
    times(line),
    (due) => {
      runs.push(`${due.toISOString().slice(11, 16)}@${new Date(clock.now()).toISOString().slice(11, 16)}`);
    },
    { clock, timezone: 'UTC' },
  );
  timer.start();
  return { clock, runs, timer };
}

void test('timer: runs each time on the wall clock, and not after stop', () => {
  const { clock, runs, timer } = timerOn('*/5 * * * * job', '2026-12-02T10:02:00Z');
  clock.advance(20 * MIN);
  assert.deepEqual(runs, ['10:05@10:05', '10:10@10:10', '10:15@10:15', '10:20@10:20']);
  assert.equal(iso(timer.next), '2026-12-02T10:25:00.000Z');
  timer.stop();
  clock.advance(20 * MIN);
  assert.equal(runs.length, 4);
});

void test('timer: a jump forward over many runs (NTP step, resume) runs only the one due, then keeps the schedule', () => {
  const { clock, runs } = timerOn('*/5 * * * * job', '2026-12-02T10:02:00Z');
  clock.advance(1 * MIN); // 10:03
  clock.jump(2 * 3600_000); // 12:03: 24 runs were missed
  clock.advance(1 * MIN); // the next check sees the jump
  assert.deepEqual(runs, ['10:05@12:04']);
  clock.advance(6 * MIN);
  assert.deepEqual(runs, ['10:05@12:04', '12:05@12:05', '12:10@12:10']);
});

void test('timer: a small step back repeats no run; a step back of more than 3 h restarts the schedule', () => {
  const { clock, runs } = timerOn('0 * * * * job', '2026-12-02T09:59:00Z');
  clock.advance(1 * MIN); // 10:00 runs
  clock.jump(-30 * MIN); // 09:30
  clock.advance(60 * MIN); // 10:30: 10:00 is not run again; 11:00 is next
  assert.deepEqual(runs, ['10:00@10:00']);
  clock.advance(30 * MIN);
  assert.deepEqual(runs, ['10:00@10:00', '11:00@11:00']);
  clock.jump(-BIG_STEP_BACK_MS - 60 * MIN); // 07:00
  clock.advance(61 * MIN);
  assert.deepEqual(runs, ['10:00@10:00', '11:00@11:00', '08:00@08:00']);
});
