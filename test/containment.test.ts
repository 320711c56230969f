// Containment (issue #12): every process a vassal starts is stopped with it, even one that left
// its process group: a `setsid` daemon, a double-fork daemonizer, `nohup cmd &` from a shell, and
// an escapee that inherited the owned socket. In both modes: a cgroup per instance (where this
// machine allows one) and the child subreaper (`--containment subreaper`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  FIXTURES,
  ROOT,
  freePort,
  getJson,
  killMarked,
  markedProcesses,
  PYTHON,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
} from './support.js';

const DAEMONIZE = join(ROOT, 'packages', 'daemon', 'test', 'fixtures', 'daemonize.py');
const SOCKET_APP = join(FIXTURES, 'socket-app.mjs');

interface Marked {
  readonly pid: number;
  readonly generation: string;
  readonly emperorId: string;
}

/** The processes of a test's vassals (`MARK`), with the instance they belong to. */
function marked(mark: string): Marked[] {
  return markedProcesses(mark).map((p) => ({
    pid: p.pid,
    generation: p.env('EMPEROR_GENERATION'),
    emperorId: p.env('EMPEROR_ID'),
  }));
}

/** Resolves with the connection's fate: `refused` (or reset) or `accepted`. */
function tryConnect(port: number): Promise<'refused' | 'accepted'> {
  return new Promise((done) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      done('accepted');
    });
    s.once('error', () => {
      done('refused');
    });
  });
}

/**
 * A shell vassal that leaves four kinds of escapee before it execs its app, which serves the
 * owned socket: each of them inherits that socket (fd 3) too.
 */
function escaperFile(dir: string, port: number, mark: string): string {
  const script = join(dir, 'escapes.sh');
  writeFileSync(
    script,
    [
      'setsid sleep 1000 &',
      'nohup sleep 1001 >/dev/null 2>&1 &',
      `${PYTHON} ${DAEMONIZE} "${dir}/daemon.$EMPEROR_GENERATION.pid"`,
      `exec ${process.execPath} ${SOCKET_APP}`,
      '',
    ].join('\n'),
  );
  return `[vassal]\nexec = /bin/sh ${script}\nsocket = 127.0.0.1:${port}\nenv = MARK=${mark}\nstop-timeout = 3\n`;
}

const MODES = [
  { mode: 'cgroup', args: ['--containment', 'cgroup'] },
  { mode: 'subreaper', args: ['--containment', 'subreaper'] },
];

/** Waits until the app answers on its owned socket. */
function served(port: number): Promise<Record<string, unknown>> {
  return waitFor(() => getJson(port), { what: `the app to answer on port ${port}` });
}

/** The app, its three escapees and the daemonizer's daemon of `generation`. */
async function allUp(mark: string, generation: string): Promise<void> {
  await waitFor(() => marked(mark).filter((p) => p.generation === generation).length >= 4, {
    what: `generation ${generation}: the app and its 3 escapees`,
    seen: () => marked(mark),
  });
}

async function noneOf(mark: string, what: string, pred: (p: Marked) => boolean = () => true): Promise<void> {
  await waitFor(() => marked(mark).filter(pred).length === 0, {
    what,
    seen: () => marked(mark),
  });
}

async function containmentMode(control: string): Promise<string> {
  const r = await runCli(['status', '--json'], { control });
  return (JSON.parse(r.stdout) as { emperor: { containment: { mode: string } } }).emperor.containment.mode;
}

for (const { mode, args } of MODES) {
  void test(`${mode}: escapees are stopped on reload, restart, stop and delete; the port is free at once`, async (t) => {
    const dir = tempDir(t);
    const mark = `c${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    const port = await freePort();
    const emp = await startEmperor(t, { args });
    const control = join(emp.dir, 'run', 'control.sock');
    const expected = mode === 'cgroup' ? 'cgroup' : 'subreaper';
    assert.equal(await containmentMode(control), expected);
    const body = escaperFile(dir, port, mark);
    emp.write('esc.ini', body);
    await served(port);
    await allUp(mark, '1');

    // A reload (rolling, with an owned socket): the old generation's escapees go with it.
    emp.write('esc.ini', `${body}; edited\n`);
    await allUp(mark, '2');
    await noneOf(mark, 'no process of generation 1 after the reload', (p) => p.generation === '1');

    const restart = await runCli(['restart', 'esc', '--wait'], { control });
    assert.equal(restart.code, 0, restart.stderr);
    await allUp(mark, '3');
    await noneOf(mark, 'no process of generation 2 after the restart', (p) => p.generation === '2');

    const stop = await runCli(['stop', 'esc', '--wait'], { control });
    assert.equal(stop.code, 0, stop.stderr);
    // `--wait` returns once the vassal is stopped, which is once every process of it is gone.
    assert.deepEqual(marked(mark), [], 'nothing of the vassal runs once `stop --wait` returns');
    assert.equal(await tryConnect(port), 'refused');

    const start = await runCli(['start', 'esc', '--wait'], { control });
    assert.equal(start.code, 0, start.stderr);
    await allUp(mark, '4');

    const from = emp.lines.length;
    rmSync(join(emp.vassals, 'esc.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'esc', 'removed', from);
    assert.deepEqual(marked(mark), [], 'nothing of the vassal runs once it is removed');
    assert.equal(await tryConnect(port), 'refused');

    // Added back at once: the address is free (no escapee holds it).
    emp.write('esc.ini', body);
    await served(port);
    await allUp(mark, '1');
  });

  void test(`${mode}: a killed emperor's escapees are killed by the next one before it starts its own`, async (t) => {
    const dir = tempDir(t);
    const mark = `k${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    const port = await freePort();
    const emp = await startEmperor(t, { args, files: { 'esc.ini': escaperFile(dir, port, mark) } });
    await allUp(mark, '1');
    await waitFor(() => readFileSync(join(emp.dir, 'run', 'emperor.state.json'), 'utf8').includes('"esc"'), {
      what: 'the state file to record the instance',
    });
    const oldId = marked(mark)[0]?.emperorId;
    emp.child.kill('SIGKILL');
    await emp.exited;
    // The app dies with the emperor (its parent-death signal); the escapees do not.
    await waitFor(() => marked(mark).length >= 3, { what: 'the escapees outlive the emperor' });

    const again = await startEmperor(t, { args, dir: emp.dir });
    assert.deepEqual(
      marked(mark).filter((p) => p.emperorId === oldId),
      [],
      'the old emperor left nothing once the new one is ready',
    );
    await served(port);
    await allUp(mark, '1');
    assert.ok(again.lines.some((l) => l.event === 'leftovers-killed' || l.event === 'leftover-killed'));
  });

  void test(`${mode}: a crash-looping daemonizer leaves no daemon behind`, async (t) => {
    const dir = tempDir(t);
    const mark = `d${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    // Starts a setsid daemon, waits until it runs in a session of its own, and exits: over and
    // over. Each exit takes its daemon along.
    const script = join(dir, 'loop.py');
    writeFileSync(
      script,
      [
        'import os, time',
        'r, w = os.pipe()',
        'if os.fork() == 0:',
        '    os.setsid()',
        '    if os.fork() > 0: os._exit(0)',
        "    os.write(w, b'x')",
        '    time.sleep(1000)',
        'os.read(r, 1)',
        '',
      ].join('\n'),
    );
    const body =
      `[vassal]\nexec = ${PYTHON} ${script}\nenv = MARK=${mark}\n` +
      'restart-delay = 0.1\nrestart-delay-max = 0.3\n';
    const emp = await startEmperor(t, { args, files: { 'loop.ini': body } });
    await waitFor(() => emp.lines.filter((l) => l.event === 'spawn' && l.vassal === 'loop').length >= 6, {
      what: '6 starts of the daemonizer',
    });
    // Each daemon is killed when its daemonizer's exit is handled: at most the newest instance runs
    // (its main process, the middle fork and the daemon), never the daemons of the earlier ones.
    assert.ok(marked(mark).length <= 3, `processes alive after 6 starts: ${marked(mark).length}`);
    const from = emp.lines.length;
    rmSync(join(emp.vassals, 'loop.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'loop', 'removed', from);
    assert.deepEqual(marked(mark), [], 'no daemon once the vassal is removed');
  });
  void test(`${mode}: status counts the memory of a daemon that left the instance tree`, async (t) => {
    const mark = `m${process.pid}${mode}`;
    t.after(() => {
      killMarked(mark);
    });
    // A double-fork daemon that holds 64 MiB: no longer a descendant of the main process nor in its
    // group; still in the instance's cgroup, or (subreaper) the emperor's child with its tags.
    const hog =
      "import os,time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\nx = b'x' * (64 << 20)\ntime.sleep(1000)\n";
    const dir = tempDir(t);
    writeFileSync(join(dir, 'hog.py'), hog);
    const emp = await startEmperor(t, {
      args,
      files: {
        'hog.ini': `[vassal]\nshell = true\nexec = ${PYTHON} ${join(dir, 'hog.py')}; exec sleep 1000\nenv = MARK=${mark}\n`,
      },
    });
    const control = join(emp.dir, 'run', 'control.sock');
    await waitFor(() => marked(mark).length >= 2, {
      what: 'the app and its daemon',
      seen: () => marked(mark),
    });
    const rss = await waitFor(
      async () => {
        const r = await runCli(['status', '--json'], { control });
        const v = (JSON.parse(r.stdout) as { vassals: { instances: { rss_bytes: number | null }[] }[] })
          .vassals[0];
        const bytes = v?.instances[0]?.rss_bytes ?? 0;
        return bytes >= 64 << 20 && bytes;
      },
      { what: "the instance's RSS to include the daemon's 64 MiB" },
    );
    assert.ok(rss < 256 << 20, `RSS ${rss}`);
  });
}
