// `cron` and `unique-cron` (issue #13), with real processes: a job runs on the wall clock with the
// vassal's chdir, environment and log; a `unique-cron` run is skipped while the previous one
// still goes (a plain `cron` run overlaps, as uWSGI's); a run is stopped with the vassal. The
// calendar, DST and clock jumps are unit-tested on a controllable clock (cron-schedule.test.ts).
// The tests of this file run side by side: one of them waits for a real minute to turn.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { get } from 'node:http';
import {
  controlSocket,
  freePort,
  killMarked,
  markedProcesses,
  runCli,
  startEmperor,
  ROOT,
  tempDir,
  waitFor,
  type LogLine,
} from './support.js';

interface CronJobStatus {
  job: number;
  line: number;
  command: string;
  unique: boolean;
  running: number[];
  last_run: string | null;
  last_exit: { code: number | null; signal: string | null; at: string } | null;
  next_run: string | null;
  skipped: number;
}

async function cronJobs(control: string, name: string): Promise<CronJobStatus[] | undefined> {
  const r = await runCli(['status', '--json'], { control });
  const s = JSON.parse(r.stdout) as { vassals: { name: string; cron_jobs?: CronJobStatus[] }[] };
  return s.vassals.find((v) => v.name === name)?.cron_jobs;
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve(body);
      });
    }).on('error', reject);
  });
}

/** For the tests that are not about the wall clock: a minute passes every second. */
const FAST = { EMPEROR_TEST_CRON_SPEED: '60' };

function cronLines(lines: readonly LogLine[], name: string, job: number): LogLine[] {
  return lines.filter((l) => l.vassal === name && l.cron === job && String(l.event).startsWith('cron-'));
}

/** The most runs of one job that were going at once, from its start and exit lines in order. */
function mostAtOnce(lines: readonly LogLine[]): number {
  let now = 0;
  let most = 0;
  for (const l of lines) {
    if (l.event === 'cron-start') now++;
    if (l.event === 'cron-exit') now--;
    most = Math.max(most, now);
  }
  return most;
}

void describe('cron jobs', { concurrency: true }, () => {
  void test('a `* * * * *` job runs at the next minute of the wall clock, in chdir, with env, into the vassal log', async (t) => {
    const dir = tempDir(t);
    const mark = `c${process.pid}wall`;
    t.after(() => {
      killMarked(mark);
    });
    const emp = await startEmperor(t);
    emp.write(
      'tick.ini',
      [
        '[vassal]',
        'exec = sleep 1000',
        `chdir = ${dir}`,
        `env = MARK=${mark}`,
        'env = GREETING=hello',
        // `$(...)` is a placeholder in vassal files (uWSGI's): the shell's command substitution is `...`.
        'cron = * * * * * echo "tick $GREETING in `pwd` as cron $EMPEROR_ATTACH"',
        '',
      ].join('\n'),
    );
    await emp.waitLine((l) => l.event === 'cron-scheduled' && l.vassal === 'tick', 'cron-scheduled');
    // At most a minute away, plus the spawn on a loaded machine.
    const exit = await emp.waitLine(
      (l) => l.event === 'cron-exit' && l.vassal === 'tick',
      'the job run and exit',
      0,
      75_000,
    );
    assert.equal(exit.code, 0);
    const start = emp.lines.find((l) => l.event === 'cron-start' && l.vassal === 'tick');
    assert.ok(start !== undefined, 'a cron-start line');
    const log = join(emp.logDir, 'tick.log');
    await waitFor(
      () =>
        new RegExp(`^tick/cron-0 tick hello in ${dir} as cron \\d+$`, 'm').test(readFileSync(log, 'utf8')),
      {
        what: 'the run’s line in tick.log',
        seen: () => readFileSync(log, 'utf8'),
      },
    );
  });

  void test('a unique-cron run is skipped while the previous one goes; a plain cron run overlaps', async (t) => {
    const mark = `c${process.pid}uniq`;
    t.after(() => {
      killMarked(mark);
    });
    const metricsPort = await freePort();
    const emp = await startEmperor(t, { env: FAST, args: ['--metrics', `127.0.0.1:${metricsPort}`] });
    const control = controlSocket(emp);
    emp.write(
      'jobs.ini',
      [
        '[vassal]',
        'exec = sleep 1000',
        `env = MARK=${mark}`,
        // Each run lasts longer than a (sped-up) minute.
        'cron = * * * * * exec sleep 4',
        'unique-cron = -1 -1 -1 -1 -1 exec sleep 4',
        '',
      ].join('\n'),
    );
    const skipped = await emp.waitLine(
      (l) => l.event === 'cron-skipped' && l.vassal === 'jobs',
      'a skipped unique-cron run',
      0,
      30_000,
    );
    assert.equal(skipped.cron, 1, 'only the unique-cron skips');
    await emp.waitLine(
      (l) => l.event === 'cron-exit' && l.vassal === 'jobs' && l.cron === 1,
      'a unique-cron run ended',
      0,
      30_000,
    );
    // A later run of it started after the one that ended.
    const firstExit = emp.lines.findIndex((l) => l.event === 'cron-exit' && l.cron === 1);
    await emp.waitLine(
      (l) => l.event === 'cron-start' && l.vassal === 'jobs' && l.cron === 1,
      'the next unique-cron run',
      firstExit,
      30_000,
    );
    assert.equal(mostAtOnce(cronLines(emp.lines, 'jobs', 1)), 1, 'unique-cron never ran twice at once');
    assert.ok(
      mostAtOnce(cronLines(emp.lines, 'jobs', 0)) >= 2,
      `plain cron overlapped: ${JSON.stringify(cronLines(emp.lines, 'jobs', 0).map((l) => l.event))}`,
    );
    assert.ok(!cronLines(emp.lines, 'jobs', 0).some((l) => l.event === 'cron-skipped'));

    // Status shows each job: its last run and how it ended, the next run, the runs going, the skips.
    const jobs = await waitFor(
      async () => {
        const j = await cronJobs(control, 'jobs');
        return j?.length === 2 && j.every((x) => x.last_exit !== null) ? j : undefined;
      },
      { what: 'both jobs with a last exit in status' },
    );
    assert.deepEqual(
      jobs.map((j) => [j.job, j.line, j.command, j.unique, j.last_exit?.code]),
      [
        [0, 4, 'exec sleep 4', false, 0],
        [1, 5, 'exec sleep 4', true, 0],
      ],
    );
    for (const j of jobs) {
      assert.ok(j.next_run !== null && j.last_run !== null);
      assert.ok(Date.parse(j.next_run) > Date.parse(j.last_run), 'next run after the last');
    }
    assert.ok((jobs[1]?.skipped ?? 0) >= 1);
    assert.equal(jobs[0]?.skipped, 0);
    const table = await runCli(['status'], { control, env: { COLUMNS: '200' } });
    // (The sped-up clock's next run is ahead of the real one: only its form is checked.)
    assert.match(
      table.stdout,
      /\n {2}cron-0: last exit 0 \S+ ago, next (now|in \S+)(, \d+ running)?: exec sleep 4\n/,
    );
    assert.match(
      table.stdout,
      /\n {2}cron-1: last exit 0 \S+ ago, next (now|in \S+), (1 running, )?\d+ skipped/,
    );
    const text = await metrics(metricsPort);
    assert.match(text, /^emperor_cron_last_exit_code\{vassal="jobs",job="1"\} 0$/m);
    assert.match(text, /^emperor_cron_next_run_timestamp_seconds\{vassal="jobs",job="0"\} [\d.]+$/m);
    assert.match(text, /^emperor_cron_skipped_total\{vassal="jobs",job="1"\} [1-9]\d*$/m);
  });

  void test('a running job is stopped with the vassal: nothing of it is left after the file is deleted', async (t) => {
    const mark = `c${process.pid}del`;
    t.after(() => {
      killMarked(mark);
    });
    const emp = await startEmperor(t, { env: FAST });
    emp.write(
      'long.ini',
      [
        '[vassal]',
        'exec = sleep 1000',
        `env = MARK=${mark}`,
        'stop-timeout = 2',
        // A run that leaves a child in its group and one that left it.
        'unique-cron = * * * * * sleep 2001 & setsid sleep 3001 & exec sleep 1001',
        '',
      ].join('\n'),
    );
    await emp.waitLine((l) => l.event === 'cron-start' && l.vassal === 'long', 'the job started', 0, 30_000);
    const pids = (): string[] => markedProcesses(mark).map((p) => p.cmdline);
    await waitFor(() => pids().includes('sleep 1001') && pids().includes('sleep 3001'), {
      what: 'the job’s processes',
      seen: pids,
    });
    rmSync(join(emp.vassals, 'long.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'long', 'long removed');
    assert.deepEqual(markedProcesses(mark), [], 'nothing of the app or the job left');
    // No run after the removal.
    const removedAt = emp.lines.findIndex((l) => l.event === 'removed' && l.vassal === 'long');
    assert.ok(!emp.lines.slice(removedAt).some((l) => l.event === 'cron-start'));
  });

  void test('vassals.example/shop.ini: its report job runs beside the sweeper and reaches the app', async (t) => {
    const examples = join(ROOT, 'vassals.example');
    const port = await freePort();
    const emp = await startEmperor(t, { env: FAST });
    const body = readFileSync(join(examples, 'shop.ini'), 'utf8')
      .replaceAll('%d', `${examples}/`)
      .replace('env = PORT=8106', `env = PORT=${port}`);
    emp.write('shop.ini', body);
    const log = join(emp.logDir, 'shop.log');
    await waitFor(
      () => {
        const text = readFileSync(log, 'utf8');
        return (
          text.includes('shop/attach-0 sweeper up') &&
          new RegExp(`^shop/cron-0 report: http://127\\.0\\.0\\.1:${port}/ answered 200`, 'm').test(text)
        );
      },
      {
        what: 'the sweeper and a report in shop.log',
        timeout: 40_000,
        seen: () => readFileSync(log, 'utf8'),
      },
    );
  });
});
