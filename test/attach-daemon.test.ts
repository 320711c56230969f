// `attach-daemon` (issue #13): side daemons of a vassal, with real processes. Started with the
// first generation as the vassal's user, chdir, environment and umask; their output in the
// vassal's log behind their own prefix; restarted when they die; untouched by a reload of the
// app; replaced when their own line changes; stopped with the vassal, every process they started
// included, in both containment modes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killMarked, markedProcesses, runCli, startEmperor, tempDir, waitFor } from './support.js';

interface Marked {
  readonly pid: number;
  /** EMPEROR_ATTACH, or '' for an app process. */
  readonly attach: string;
  readonly instance: string;
  readonly generation: string;
  readonly cmdline: string;
  readonly emperorId: string;
}

/** The processes of a test's vassals (`MARK`), with what they are. */
function marked(mark: string): Marked[] {
  return markedProcesses(mark).map((p) => ({
    pid: p.pid,
    attach: p.env('EMPEROR_ATTACH'),
    instance: p.env('EMPEROR_INSTANCE'),
    generation: p.env('EMPEROR_GENERATION'),
    cmdline: p.cmdline,
    emperorId: p.env('EMPEROR_ID'),
  }));
}

interface SideStatus {
  index: number;
  command: string;
  pid: number | null;
  state: string;
  uptime_s: number | null;
  restarts: number;
}

interface Status {
  vassals: { name: string; generation: number; state: string; side_daemons?: SideStatus[] }[];
}

async function status(control: string, name: string): Promise<Status['vassals'][number] | undefined> {
  const r = await runCli(['status', '--json'], { control });
  return (JSON.parse(r.stdout) as Status).vassals.find((v) => v.name === name);
}

/** The side daemon running `word`: the `sleep 100<word>` its script ends as (the main process is the `sh -c` above it). */
function side(mark: string, word: string): Marked | undefined {
  return marked(mark).find((p) => p.attach !== '' && p.cmdline === `sleep 100${word}`);
}

/**
 * A side daemon script: prints where and as what it runs, leaves a child in its group and one
 * that left it (setsid), then becomes `sleep 100<N>`.
 */
function sideScript(dir: string): string {
  const script = join(dir, 'side.sh');
  writeFileSync(
    script,
    [
      'echo "side $1 up: pwd=$(pwd) umask=$(umask) instance=${EMPEROR_INSTANCE:-none} attach=$EMPEROR_ATTACH"',
      'echo "side $1 complains" >&2',
      'sleep 200$1 &',
      'setsid sleep 300$1 &',
      'exec sleep 100$1',
      '',
    ].join('\n'),
  );
  return script;
}

const MODES = [
  { mode: 'cgroup', args: ['--containment', 'cgroup'] },
  { mode: 'subreaper', args: ['--containment', 'subreaper'] },
];

for (const { mode, args } of MODES) {
  void test(`${mode}: attach-daemon starts with the vassal, restarts when killed, survives an app reload, follows its own line, stops with the vassal`, async (t) => {
    const dir = tempDir(t);
    const mark = `a${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    const script = sideScript(dir);
    const emp = await startEmperor(t, { args });
    const control = join(emp.dir, 'run', 'control.sock');
    const body = (lines: string[], extra = ''): string =>
      [
        '[vassal]',
        'exec = sleep 1000',
        `chdir = ${dir}`,
        'umask = 027',
        `env = MARK=${mark}`,
        'stop-timeout = 3',
        'restart-delay = 0.1',
        ...lines.map((w) => `attach-daemon = /bin/sh ${script} ${w}`),
        extra,
        '',
      ].join('\n');
    emp.write('side.ini', body(['1', '2']));

    // Both side daemons run, beside the app, as side daemons (not instances).
    const one = await waitFor(() => side(mark, '1'), { what: 'side daemon 1', seen: () => marked(mark) });
    const two = await waitFor(() => side(mark, '2'), { what: 'side daemon 2', seen: () => marked(mark) });
    assert.equal(one.instance, '');
    assert.equal(one.generation, '');
    const app = await waitFor(() => marked(mark).find((p) => p.cmdline === 'sleep 1000'), {
      what: 'the app',
    });
    assert.equal(app.instance, '0');
    assert.equal(app.attach, '');
    if (mode === 'cgroup') {
      // Its own cgroup leaf beside the app's instances.
      assert.match(readFileSync(`/proc/${one.pid}/cgroup`, 'utf8'), /\/side\.vassal\/attach-0\n/);
      assert.match(readFileSync(`/proc/${app.pid}/cgroup`, 'utf8'), /\/side\.vassal\/1\.0\n/);
    }

    // Its output is in the vassal's log, behind its own prefix; chdir and umask are the vassal's.
    const log = join(emp.logDir, 'side.log');
    await waitFor(
      () => {
        const text = readFileSync(log, 'utf8');
        return (
          text.includes(`side/attach-0 side 1 up: pwd=${dir} umask=0027 instance=none attach=0\n`) &&
          text.includes('side/attach-0 side 1 complains\n') &&
          text.includes(`side/attach-1 side 2 up: pwd=${dir} umask=0027 instance=none attach=1\n`)
        );
      },
      { what: 'the side daemons’ lines in side.log', seen: () => readFileSync(log, 'utf8') },
    );

    // `status --json` shows them.
    const s1 = await waitFor(
      async () => {
        const v = await status(control, 'side');
        return v?.side_daemons?.length === 2 && v.side_daemons.every((d) => d.pid !== null) ? v : undefined;
      },
      { what: 'two side daemons in status' },
    );
    assert.deepEqual(
      s1.side_daemons?.map((d) => [d.index, d.state, d.restarts]),
      [
        [0, 'running', 0],
        [1, 'running', 0],
      ],
    );
    const table = await runCli(['status'], { control, env: { COLUMNS: '200' } });
    assert.match(table.stdout, /attach-0: pid \d+, up \d+s, 0 restarts: \/bin\/sh .*side\.sh 1/);

    // Killed: started again (its own backoff), the app untouched.
    process.kill(one.pid, 'SIGKILL');
    const oneAgain = await waitFor(
      () => {
        const p = side(mark, '1');
        return p !== undefined && p.pid !== one.pid ? p : undefined;
      },
      { what: 'side daemon 1 restarted', seen: () => marked(mark) },
    );
    await waitFor(async () => (await status(control, 'side'))?.side_daemons?.[0]?.restarts === 1, {
      what: 'restarts = 1 in status',
    });
    assert.ok(
      marked(mark).some((p) => p.pid === app.pid),
      'the app still runs',
    );
    // What the killed one left in its group or cgroup went with it.
    await waitFor(() => marked(mark).filter((p) => p.cmdline === 'sleep 2001').length === 1, {
      what: 'one `sleep 2001` (the killed daemon’s child is gone)',
      seen: () => marked(mark),
    });

    // A reload of the app (a new generation) leaves the side daemons alone.
    emp.write('side.ini', body(['1', '2'], 'env = APP=2'));
    await waitFor(() => marked(mark).find((p) => p.cmdline === 'sleep 1000' && p.generation === '2'), {
      what: 'generation 2 of the app',
      seen: () => marked(mark),
    });
    assert.equal(side(mark, '1')?.pid, oneAgain.pid, 'side daemon 1 kept');
    assert.equal(side(mark, '2')?.pid, two.pid, 'side daemon 2 kept');

    // Its own line changed: that daemon is replaced, the other one and the app are not.
    await emp.waitLine(
      (l) => l.event === 'running' && l.vassal === 'side' && l.generation === 2,
      'generation 2 running',
    );
    const from = emp.lines.length;
    emp.write('side.ini', body(['1', '3'], 'env = APP=2'));
    await waitFor(() => side(mark, '3'), { what: 'side daemon 3', seen: () => marked(mark) });
    await waitFor(() => side(mark, '2') === undefined, { what: 'side daemon 2 stopped' });
    assert.equal(side(mark, '1')?.pid, oneAgain.pid, 'side daemon 1 kept');
    assert.ok(
      !emp.lines.slice(from).some((l) => l.event === 'generation-start'),
      'no new generation for a change of an attach-daemon line',
    );

    // Deleted: the app, the side daemons and everything they started are gone.
    rmSync(join(emp.vassals, 'side.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'side', 'side removed');
    assert.deepEqual(marked(mark), []);
  });
}

void test('an attach-daemon is stopped with the vassal by `emperor stop` and started again by `emperor start`', async (t) => {
  const dir = tempDir(t);
  const mark = `s${process.pid}`;
  t.after(() => {
    killMarked(mark);
  });
  const script = sideScript(dir);
  const emp = await startEmperor(t);
  const control = join(emp.dir, 'run', 'control.sock');
  emp.write(
    'side.ini',
    `[vassal]\nexec = sleep 1000\nenv = MARK=${mark}\nattach-daemon = /bin/sh ${script} 4\n`,
  );
  await waitFor(() => side(mark, '4'), { what: 'side daemon 4' });
  const stop = await runCli(['stop', 'side', '--wait'], { control });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(marked(mark), []);
  assert.deepEqual((await status(control, 'side'))?.side_daemons, []);
  const start = await runCli(['start', 'side', '--wait'], { control });
  assert.equal(start.code, 0, start.stderr);
  await waitFor(() => side(mark, '4'), { what: 'side daemon 4 again' });
});

for (const { mode, args } of MODES) {
  void test(`${mode}: what a killed emperor's side daemon left is killed by the next emperor`, async (t) => {
    const dir = tempDir(t);
    const mark = `k${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    const script = sideScript(dir);
    const body = `[vassal]\nexec = sleep 1000\nenv = MARK=${mark}\nattach-daemon = /bin/sh ${script} 5\n`;
    const emp = await startEmperor(t, { args, files: { 'side.ini': body } });
    await waitFor(() => side(mark, '5'), { what: 'side daemon 5' });
    await waitFor(() => marked(mark).some((p) => p.cmdline === 'sleep 3005'), { what: 'its setsid child' });
    await waitFor(() => readFileSync(join(emp.dir, 'run', 'emperor.state.json'), 'utf8').includes('"side"'), {
      what: 'the state file to record the vassal',
    });
    const oldId = side(mark, '5')?.emperorId;
    emp.child.kill('SIGKILL');
    await emp.exited;
    // The shell dies with the emperor (parent-death signal); what it started does not.
    assert.ok(
      marked(mark).some((p) => p.cmdline === 'sleep 3005'),
      'its setsid child outlived it',
    );

    const again = await startEmperor(t, { args, dir: emp.dir });
    assert.deepEqual(
      marked(mark).filter((p) => p.emperorId === oldId),
      [],
      'the old emperor left nothing once the new one is ready',
    );
    await waitFor(() => side(mark, '5'), { what: 'side daemon 5 started by the new emperor' });
    await again.stop();
    assert.deepEqual(marked(mark), [], 'nothing left after a clean shutdown');
  });
}

void test(
  'a root emperor runs an attach-daemon as the vassal’s user and group',
  { skip: process.getuid?.() === 0 ? false : 'needs root to switch users' },
  async (t) => {
    const mark = `u${process.pid}`;
    t.after(() => {
      killMarked(mark);
    });
    const emp = await startEmperor(t);
    emp.write(
      'low.ini',
      `[vassal]\nexec = sleep 1000\nuser = nobody\nenv = MARK=${mark}\nattach-daemon = exec sleep 1007\n`,
    );
    const daemon = await waitFor(() => marked(mark).find((p) => p.cmdline === 'sleep 1007'), {
      what: 'the side daemon exec-ed',
    });
    const status = readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
    assert.match(status, /\nUid:\t65534\t65534\t65534\t65534\n/);
    assert.match(status, /\nGid:\t65534\t65534\t65534\t65534\n/);
    const environ = readFileSync(`/proc/${daemon.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('USER=nobody'), 'USER');
  },
);
