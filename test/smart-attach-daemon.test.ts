// `smart-attach-daemon = PIDFILE COMMAND` (issue #13), with a real self-forking daemon: a shell
// double fork that writes its pidfile. Started only when the pidfile names no live daemon,
// tracked through the pidfile once its launcher exits, kept across a reload of the app (same
// pid, not launched again), stopped with the vassal and with the emperor, in both containment
// modes; a pidfile naming a process that started after it was written (a reused pid) is ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, killMarked, markedProcesses, runCli, startEmperor, tempDir, waitFor } from './support.js';

/**
 * The launcher: notes each launch, forks the daemon away (its own session, its parent gone) and
 * exits at once; the daemon writes its pidfile a little later, then becomes `sleep 1000<N>`.
 */
function daemonScript(dir: string): string {
  const script = join(dir, 'smartd.sh');
  writeFileSync(
    script,
    [
      'echo "launch $2" >> "$(dirname "$1")/launches"',
      'echo "smartd $2 launching"',
      `( setsid sh -c 'sleep 0.3; echo $$ > "$1"; exec sleep 1000$2' sh "$1" "$2" & )`,
      'exit 0',
      '',
    ].join('\n'),
  );
  return script;
}

const launches = (dir: string): string[] =>
  existsSync(join(dir, 'launches')) ? readFileSync(join(dir, 'launches'), 'utf8').trim().split('\n') : [];

interface SideStatus {
  pid: number | null;
  kind: string;
  pidfile?: string;
  state: string;
  restarts: number;
  command: string;
}

async function sides(control: string, name: string): Promise<SideStatus[] | undefined> {
  const r = await runCli(['status', '--json'], { control });
  const s = JSON.parse(r.stdout) as { vassals: { name: string; side_daemons?: SideStatus[] }[] };
  return s.vassals.find((v) => v.name === name)?.side_daemons;
}

for (const mode of ['cgroup', 'subreaper']) {
  void test(`${mode}: a smart-attach-daemon survives an app reload (same pid, not launched again) and is stopped on delete`, async (t) => {
    const dir = tempDir(t);
    const mark = `m${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    const script = daemonScript(dir);
    const pidfile = join(dir, 'smartd.pid');
    const emp = await startEmperor(t, { args: ['--containment', mode] });
    const control = join(emp.dir, 'run', 'control.sock');
    const body = (extra: string): string =>
      [
        '[vassal]',
        'exec = sleep 1000',
        `env = MARK=${mark}`,
        'stop-timeout = 3',
        `smart-attach-daemon = ${pidfile} /bin/sh ${script} ${pidfile} 1`,
        extra,
        '',
      ].join('\n');
    emp.write('smart.ini', body(''));

    const daemon = await waitFor(() => markedProcesses(mark).find((p) => p.cmdline === 'sleep 10001'), {
      what: 'the daemon',
      seen: () => markedProcesses(mark),
    });
    assert.equal(readFileSync(pidfile, 'utf8').trim(), String(daemon.pid));
    // Tracked through its pidfile: status shows the daemon's pid, not the launcher's.
    await waitFor(async () => (await sides(control, 'smart'))?.[0]?.pid === daemon.pid, {
      what: 'the daemon’s pid in status',
      seen: () => emp.lines.slice(-10),
    });
    if (mode === 'cgroup')
      assert.match(readFileSync(`/proc/${daemon.pid}/cgroup`, 'utf8'), /\/smart\.vassal\/attach-0\n/);
    assert.match(
      readFileSync(join(emp.logDir, 'smart.log'), 'utf8'),
      /^smart\/attach-0 smartd 1 launching$/m,
    );

    // A reload of the app: a new generation, the same daemon, no second launch.
    emp.write('smart.ini', body('env = APP=2'));
    await emp.waitLine(
      (l) => l.event === 'running' && l.vassal === 'smart' && l.generation === 2,
      'generation 2',
    );
    assert.ok(alive(daemon.pid), 'the daemon still runs');
    assert.deepEqual(
      markedProcesses(mark)
        .filter((p) => p.cmdline.startsWith('sleep 1000') && p.cmdline !== 'sleep 1000')
        .map((p) => p.pid),
      [daemon.pid],
    );
    assert.deepEqual(launches(dir), ['launch 1']);
    const [shown] = (await sides(control, 'smart')) ?? [];
    assert.deepEqual([shown?.pid, shown?.kind, shown?.pidfile], [daemon.pid, 'smart', pidfile]);

    // Deleted: the daemon goes with the vassal.
    rmSync(join(emp.vassals, 'smart.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'smart', 'smart removed');
    assert.deepEqual(markedProcesses(mark), []);
  });
}

void test('a pidfile naming a live process that started after it was written is not trusted; the emperor stops the daemon it launched', async (t) => {
  const dir = tempDir(t);
  const mark = `m${process.pid}stale`;
  t.after(() => {
    killMarked(mark);
  });
  const script = daemonScript(dir);
  const pidfile = join(dir, 'smartd.pid');
  // An unrelated live process whose pid the stale pidfile names, as if the pid had been reused.
  const other = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  const otherPid = other.pid ?? 0;
  writeFileSync(pidfile, `${otherPid}\n`);
  const written = (Date.now() - 60_000) / 1000;
  utimesSync(pidfile, written, written);

  const emp = await startEmperor(t);
  emp.write(
    'stale.ini',
    `[vassal]\nexec = sleep 1000\nenv = MARK=${mark}\nsmart-attach-daemon = ${pidfile} /bin/sh ${script} ${pidfile} 2\n`,
  );
  const daemon = await waitFor(() => markedProcesses(mark).find((p) => p.cmdline === 'sleep 10002'), {
    what: 'the daemon launched despite the pidfile',
    seen: () => ({ procs: markedProcesses(mark), lines: emp.lines.slice(-10) }),
  });
  assert.notEqual(daemon.pid, otherPid);
  assert.deepEqual(launches(dir), ['launch 2']);
  await emp.waitLine((l) => l.event === 'attach-spawn' && l.pid === daemon.pid, 'the daemon tracked');

  // The emperor stops: the daemon goes with it; the unrelated process is left alone.
  assert.equal(await emp.stop(), 0);
  assert.deepEqual(markedProcesses(mark), []);
  assert.ok(alive(otherPid), 'the process the stale pidfile named still runs');
});

void test('a smart-attach-daemon whose pidfile names its live daemon is adopted, not started twice', async (t) => {
  const dir = tempDir(t);
  const mark = `m${process.pid}adopt`;
  t.after(() => {
    killMarked(mark);
  });
  const script = daemonScript(dir);
  const pidfile = join(dir, 'smartd.pid');
  // Started before the vassal (by hand, or by an earlier run of it).
  spawn('/bin/sh', [script, pidfile, '3'], { stdio: 'ignore', env: { ...process.env, MARK: mark } });
  const daemon = await waitFor(
    () => {
      const p = markedProcesses(mark).find((x) => x.cmdline === 'sleep 10003');
      return p && existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim() === String(p.pid)
        ? p
        : undefined;
    },
    { what: 'the daemon started by hand' },
  );
  const emp = await startEmperor(t);
  emp.write(
    'adopt.ini',
    `[vassal]\nexec = sleep 1000\nenv = MARK=${mark}\nsmart-attach-daemon = ${pidfile} /bin/sh ${script} ${pidfile} 3\n`,
  );
  await emp.waitLine((l) => l.event === 'smart-adopted' && l.pid === daemon.pid, 'the daemon adopted');
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'adopt', 'adopt running');
  assert.deepEqual(launches(dir), ['launch 3'], 'not launched again');
  rmSync(join(emp.vassals, 'adopt.ini'));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'adopt', 'adopt removed');
  assert.ok(!alive(daemon.pid), 'the adopted daemon is stopped with the vassal');
});

void test('a launcher that stays in the foreground: the daemon when it writes its own pidfile, else a failed start after ready-timeout, stopped', async (t) => {
  const dir = tempDir(t);
  const mark = `m${process.pid}fg`;
  t.after(() => {
    killMarked(mark);
  });
  const own = join(dir, 'own.pid');
  const none = join(dir, 'none.pid');
  const emp = await startEmperor(t);
  emp.write(
    'fg.ini',
    [
      '[vassal]',
      'exec = sleep 1000',
      `env = MARK=${mark}`,
      'ready-timeout = 2',
      // Writes its own pid and stays: it is the daemon, found while it still runs.
      `smart-attach-daemon = ${own} echo $$ > ${own}; exec sleep 10004`,
      // Never forks, never writes: no daemon shows up, and it must not be "starting" forever.
      `smart-attach-daemon = ${none} exec sleep 10005`,
      '',
    ].join('\n'),
  );
  const foreground = await waitFor(() => markedProcesses(mark).find((p) => p.cmdline === 'sleep 10004'), {
    what: 'the foreground daemon',
  });
  await emp.waitLine(
    (l) => l.event === 'attach-spawn' && l.pid === foreground.pid,
    'the foreground daemon tracked',
  );
  const failed = await emp.waitLine(
    (l) => l.event === 'attach-spawn-failed' && l.vassal === 'fg' && l.attach === 1,
    'the launcher that never names a daemon fails',
  );
  assert.match(String(failed.reason), /still runs after ready-timeout \(2 s\).*attach-daemon/);
  // The failed launcher is stopped, not left behind; the other daemon is untouched.
  await waitFor(() => !markedProcesses(mark).some((p) => p.cmdline === 'sleep 10005') || undefined, {
    what: 'the hanging launcher stopped',
    seen: () => markedProcesses(mark),
  });
  assert.ok(alive(foreground.pid));
  const side = await waitFor(
    async () =>
      (await sides(join(emp.dir, 'run', 'control.sock'), 'fg'))?.find((s) => s.pid === foreground.pid),
    { what: 'status showing the foreground daemon' },
  );
  assert.equal(side.kind, 'smart');
  rmSync(join(emp.vassals, 'fg.ini'));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'fg', 'fg removed');
  assert.ok(!alive(foreground.pid), 'the foreground daemon is stopped with the vassal');
});
