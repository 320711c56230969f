// When a `cron` / `unique-cron` job runs (issue #13): the next run from the parsed fields, and a
// timer on the wall clock that survives clock jumps. The config package parses both syntaxes
// (crontab's and uWSGI's `-N`) into sorted lists; the calendar arithmetic, time zones and DST
// transitions are croner's, which follows Vixie cron: a time skipped by spring-forward runs at
// the first valid time after the gap, a time repeated by fall-back runs once.
import { Cron } from 'croner';
import type { CronSpec } from '@emperor/config';

/** The fields that decide when a job runs (a CronSpec without its command). */
export type CronTimes = Pick<CronSpec, 'minute' | 'hour' | 'day' | 'month' | 'weekday' | 'dayOrWeekday'>;

/**
 * The fields as one croner pattern. Every field is spelled out as its list, and the day rule is
 * passed explicitly (`domAndDow`): crontab(5) matches either day field only when both were
 * restricted (the parser's `dayOrWeekday`), and a `*` spelled out as a list would otherwise read
 * as restricted.
 */
export function cronOf(times: CronTimes, timezone?: string): Cron {
  const pattern = [times.minute, times.hour, times.day, times.month, times.weekday]
    .map((f) => f.join(','))
    .join(' ');
  return new Cron(pattern, {
    paused: true,
    domAndDow: !times.dayOrWeekday,
    ...(timezone === undefined ? {} : { timezone }),
  });
}

/** The first run strictly after `after`, or undefined when the fields never match again. */
export function nextRun(times: CronTimes, after: Date, timezone?: string): Date | undefined {
  return cronOf(times, timezone).nextRun(after) ?? undefined;
}

/** The clocks a CronTimer reads: the wall clock, and timers on the monotonic clock (as setTimeout's). */
export interface TimerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: TimerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => {
    clearTimeout(h as NodeJS.Timeout);
  },
};

/**
 * Timers run on the monotonic clock, which a wall-clock step (NTP, an operator's `date -s`) does
 * not move and a suspend does not advance: waking at least this often notices such a jump while
 * the next run is far away.
 */
export const CHECK_MS = 60_000;

/** A step back by more than this reruns the schedule from the new time, as Vixie cron does; less repeats nothing. */
export const BIG_STEP_BACK_MS = 3 * 3600_000;

/**
 * Calls `onRun(due)` at each run of `times` on the wall clock, with no burst after a jump: when
 * the clock steps forward (or the machine resumes) past several runs, only the one due runs,
 * and the next is reckoned from the new time. A small step back repeats nothing.
 */
export class CronTimer {
  readonly #cron: Cron;
  readonly #onRun: (due: Date) => void;
  readonly #clock: TimerClock;
  #due: Date | undefined;
  #lastRun: number | undefined;
  #handle: unknown;
  #stopped = true;

  constructor(
    times: CronTimes,
    onRun: (due: Date) => void,
    options: { clock?: TimerClock; timezone?: string } = {},
  ) {
    this.#cron = cronOf(times, options.timezone);
    this.#onRun = onRun;
    this.#clock = options.clock ?? realClock;
  }

  /** The next run, for status (undefined when stopped or never again). */
  get next(): Date | undefined {
    return this.#due;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#due = this.#after(this.#clock.now());
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    this.#due = undefined;
    if (this.#handle !== undefined) this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  #after(ms: number): Date | undefined {
    return this.#cron.nextRun(new Date(ms)) ?? undefined;
  }

  #arm(): void {
    if (this.#stopped || this.#due === undefined) return;
    const wait = Math.min(Math.max(0, this.#due.getTime() - this.#clock.now()), CHECK_MS);
    this.#handle = this.#clock.setTimeout(() => {
      this.#handle = undefined;
      this.#check();
    }, wait);
  }

  #check(): void {
    if (this.#stopped || this.#due === undefined) return;
    const now = this.#clock.now();
    if (this.#lastRun !== undefined && now < this.#lastRun - BIG_STEP_BACK_MS) {
      // Stepped far back: the schedule starts again from the new time.
      this.#lastRun = undefined;
      this.#due = this.#after(now);
    } else if (now >= this.#due.getTime()) {
      const due = this.#due;
      this.#lastRun = now;
      // From now, not from `due`: runs missed by a jump forward are not made up.
      this.#due = this.#after(now);
      this.#onRun(due);
    }
    this.#arm();
  }
}

/**
 * For tests only (`EMPEROR_TEST_CRON_SPEED`): a wall clock that runs `speed` times faster from
 * now on, so that an end-to-end test sees minutely jobs every second and need not wait minutes.
 */
export function spedUpClock(speed: number, base: TimerClock = realClock): TimerClock {
  const origin = base.now();
  return {
    now: () => origin + (base.now() - origin) * speed,
    setTimeout: (fn, ms) => base.setTimeout(fn, ms / speed),
    clearTimeout: (h) => {
      base.clearTimeout(h);
    },
  };
}

/** The clock cron jobs run on: the wall clock, or a faster one when a test asks for it. */
export function cronClockFrom(env: Readonly<Record<string, string | undefined>>): TimerClock | undefined {
  const speed = Number(env.EMPEROR_TEST_CRON_SPEED);
  return Number.isFinite(speed) && speed > 1 ? spedUpClock(speed) : undefined;
}
