// Real third-party peers as vassals: gunicorn from Debian takes the emperor's socket through
// LISTEN_FDS and says READY=1 on NOTIFY_SOCKET; systemd's own systemd-notify gates readiness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES,
  ROOT,
  alive,
  controlSocket,
  freePort,
  getJson,
  runCli,
  startEmperor,
  startLoad,
  waitFor,
  type LogLine,
} from './support.js';

const GUNICORN = '/usr/bin/gunicorn';
const SYSTEMD_NOTIFY = '/usr/bin/systemd-notify';
const UWSGI = '/usr/bin/uwsgi';
const UWSGI_PYTHON = '/usr/lib/uwsgi/plugins/python3_plugin.so';

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;
const runningOf = (name: string, generation?: number) => (l: LogLine) =>
  l.event === 'running' && l.vassal === name && (generation === undefined || l.generation === generation);

void test(
  'gunicorn takes the owned socket unchanged, signals READY=1, and reloads under load without a failed request',
  { skip: existsSync(GUNICORN) ? false : `${GUNICORN} is not installed (apt-get install gunicorn)` },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const body = `[vassal]\nexec = ${GUNICORN} --workers 2 --chdir ${FIXTURES} wsgi_app:app\nsocket = 127.0.0.1:${port}\nready = notify\nstop-timeout = 10\n`;
    emp.write('py.ini', body);
    const spawned = await emp.waitLine(spawnOf('py'), 'spawn');
    await emp.waitLine(runningOf('py', 1), 'READY=1 from gunicorn');
    const first = await getJson(port);
    assert.equal(first.master, spawned.pid, 'a worker of the instance answers');
    assert.equal(first.generation, '1');
    // The vassal log is written asynchronously: wait for the line rather than read it at once.
    const log = await waitFor(
      () => {
        const text = readFileSync(join(emp.logDir, 'py.log'), 'utf8');
        return text.includes(`Listening at: http://127.0.0.1:${port}`) && text;
      },
      { what: "gunicorn's listening line in its log" },
    );
    assert.doesNotMatch(log, /Connection in use|Retrying/, 'gunicorn did not try to bind by itself');

    const load = startLoad(t, () => getJson(port), 3);
    const from = emp.lines.length;
    emp.write('py.ini', body + 'env = DEPLOY=2\n');
    await emp.waitLine(runningOf('py', 2), 'generation 2 ready', from);
    await waitFor(() => !alive(spawned.pid as number), { what: 'the old master gone' });
    const okThen = load.ok();
    await waitFor(() => load.ok() >= okThen + 20, { what: 'requests after the reload' });
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.equal((await getJson(port)).generation, '2');
  },
);

void test(
  'the gunicorn vassal of docs/config.md runs as written: gunicorn takes the owned socket with no --bind',
  { skip: existsSync(GUNICORN) ? false : `${GUNICORN} is not installed (apt-get install gunicorn)` },
  async (t) => {
    const md = readFileSync(join(ROOT, 'docs', 'config.md'), 'utf8');
    const block = [...md.matchAll(/```ini\n([^`]*)```/g)]
      .map((m) => m[1] ?? '')
      .find((b) => /^exec = gunicorn /m.test(b));
    assert.ok(block, 'docs/config.md has an ini block with `exec = gunicorn ...`');
    const address = /^socket = (127\.0\.0\.1:[0-9]+)$/m.exec(block)?.[1];
    assert.ok(address, 'the block has a `socket = 127.0.0.1:PORT` line');
    const port = await freePort();
    const emp = await startEmperor(t);
    // The block's app is `app:app` in the vassal file's directory (its default chdir).
    copyFileSync(join(FIXTURES, 'wsgi_app.py'), join(emp.vassals, 'app.py'));
    emp.write('docs.ini', block.replace(address, `127.0.0.1:${port}`));
    const spawned = await emp.waitLine(spawnOf('docs'), 'spawn');
    await emp.waitLine(runningOf('docs', 1), 'READY=1 from gunicorn');
    const answer = await getJson(port);
    assert.equal(answer.master, spawned.pid, 'a worker of the instance answers on the owned socket');
    const log = readFileSync(join(emp.logDir, 'docs.log'), 'utf8');
    assert.doesNotMatch(log, /Bad file descriptor|Connection in use|Traceback/);
  },
);

void test(
  'gunicorn says READY=1 before its workers have loaded the app; contrib/gunicorn/ready.py says it once they all have',
  { skip: existsSync(GUNICORN) ? false : `${GUNICORN} is not installed (apt-get install gunicorn)` },
  async (t) => {
    const emp = await startEmperor(t);
    // The second worker to import the app takes 0.8 s longer than the first (IMPORT_MARKER).
    const vassal = (name: string, config: string, port: number) =>
      `[vassal]\nexec = ${GUNICORN} ${config} --workers 2 --chdir ${FIXTURES} wsgi_app:app\nsocket = 127.0.0.1:${port}\nready = notify\nenv = IMPORT_DELAY=0.5\nenv = IMPORT_MARKER=${join(emp.dir, `${name}.imported`)}\n`;
    emp.write('plain.ini', vassal('plain', '', await freePort()));
    emp.write(
      'hooked.ini',
      vassal('hooked', `-c ${join(ROOT, 'contrib', 'gunicorn', 'ready.py')}`, await freePort()),
    );
    const imported = async (name: string) =>
      waitFor(
        () => {
          const lines = readFileSync(join(emp.logDir, `${name}.log`), 'utf8')
            .split('\n')
            .filter((l) => l.includes('"imported"'))
            .map((l) => (JSON.parse(l.slice(l.indexOf('{'))) as { time: number }).time);
          return lines.length === 2 && Math.max(...lines);
        },
        { what: `both ${name} workers' imported lines` },
      );
    const plainRunning = await emp.waitLine(runningOf('plain', 1), 'plain gunicorn running');
    const hookedRunning = await emp.waitLine(runningOf('hooked', 1), 'hooked gunicorn running');
    assert.ok(
      (plainRunning.time as number) < (await imported('plain')),
      "gunicorn's own READY=1 comes before its workers have the app",
    );
    assert.ok(
      (hookedRunning.time as number) >= (await imported('hooked')),
      'with the hooks, running comes after both workers loaded the app',
    );
    const hookedLog = readFileSync(join(emp.logDir, 'hooked.log'), 'utf8');
    assert.doesNotMatch(hookedLog, /Traceback|Exception/, 'the hooks ran without an error');
  },
);

void test(
  'uWSGI takes the owned socket through systemd activation and reloads under load without a failed request',
  {
    skip:
      existsSync(UWSGI) && existsSync(UWSGI_PYTHON)
        ? false
        : 'uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3)',
  },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    // Sockets uWSGI inherits speak its default protocol: `--protocol http` makes them HTTP
    // (`--http-socket ADDR` is not applied to an inherited socket). uWSGI 2.0 reloads on SIGTERM
    // and dies brutally on SIGINT (in-flight requests are reset): the hook makes SIGTERM a
    // graceful stop, which a rolling reload needs.
    const body = `[vassal]\nexec = ${UWSGI} --plugin python3 --protocol http --socket 127.0.0.1:${port} --wsgi-file ${join(FIXTURES, 'wsgi_app.py')} --callable app --master --processes 2 --die-on-term --hook-master-start "unix_signal:15 gracefully_kill_them_all"\nsocket = 127.0.0.1:${port}\nready = notify\n`;
    emp.write('uw.ini', body);
    const spawned = await emp.waitLine(spawnOf('uw'), 'spawn');
    await emp.waitLine(runningOf('uw', 1), 'READY=1 from uWSGI');
    assert.equal((await getJson(port)).master, spawned.pid);
    await waitFor(
      () => readFileSync(join(emp.logDir, 'uw.log'), 'utf8').includes('SystemD socket activation detected'),
      { what: "uWSGI's socket activation line in its log" },
    );

    const load = startLoad(t, () => getJson(port), 3);
    const from = emp.lines.length;
    emp.write('uw.ini', body + 'env = DEPLOY=2\n');
    await emp.waitLine(runningOf('uw', 2), 'generation 2 ready', from);
    await waitFor(() => !alive(spawned.pid as number), { what: 'the old master gone' });
    const okThen = load.ok();
    await waitFor(() => load.ok() >= okThen + 20, { what: 'requests after the reload' });
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.equal((await getJson(port)).generation, '2');
  },
);

void test(
  'gunicorn on demand: the first client wakes it and is answered, idle puts it to sleep, the next client wakes it',
  { skip: existsSync(GUNICORN) ? false : `${GUNICORN} is not installed (apt-get install gunicorn)` },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    emp.write(
      'lazy.ini',
      `[vassal]\nexec = ${GUNICORN} --workers 1 --chdir ${FIXTURES} wsgi_app:app\nsocket = 127.0.0.1:${port}\nready = notify\non-demand = true\nidle = 1\n`,
    );
    await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'lazy', 'waiting');
    const first = await getJson(port);
    const spawned = await emp.waitLine(spawnOf('lazy'), 'spawn');
    assert.equal(first.master, spawned.pid, 'the first client is answered by gunicorn');
    const from = emp.lines.length;
    await emp.waitLine((l) => l.event === 'idle' && l.vassal === 'lazy', 'idle', from);
    await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'lazy', 'waiting again', from);
    await waitFor(() => !alive(spawned.pid as number), { what: 'gunicorn asleep' });
    const again = await getJson(port);
    assert.notEqual(again.master, spawned.pid, 'a new gunicorn answered');
  },
);

void test(
  'systemd-notify --ready gates starting → running (ready = notify)',
  { skip: existsSync(SYSTEMD_NOTIFY) ? false : `${SYSTEMD_NOTIFY} is not installed` },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    emp.write(
      'slow.ini',
      `[vassal]\nexec = /bin/sh -c 'sleep 0.5 && ${SYSTEMD_NOTIFY} --ready --status=warm && exec ${process.execPath} ${join(FIXTURES, 'socket-app.mjs')}'\nsocket = 127.0.0.1:${port}\nready = notify\n`,
    );
    const spawned = await emp.waitLine(spawnOf('slow'), 'spawn');
    const running = await emp.waitLine(runningOf('slow'), 'running');
    assert.ok(
      (running.time as number) - (spawned.time as number) >= 450,
      'running only once systemd-notify said READY=1',
    );
    assert.equal((await getJson(port)).pid, spawned.pid);
    const st = await runCli(['status', 'slow', '--json'], { control: controlSocket(emp) });
    const json = JSON.parse(st.stdout) as { vassals: { instances: { status: string | null }[] }[] };
    assert.equal(json.vassals[0]?.instances[0]?.status, 'warm', 'STATUS= from systemd-notify');
  },
);

void test(
  'watchdog: an app pinging WATCHDOG=1 with systemd-notify lives on; a silent one is killed and restarted',
  { skip: existsSync(SYSTEMD_NOTIFY) ? false : `${SYSTEMD_NOTIFY} is not installed` },
  async (t) => {
    const emp = await startEmperor(t);
    // WATCHDOG_USEC and WATCHDOG_PID are what libsystemd's sd_watchdog_enabled() checks.
    emp.write(
      'pinger.ini',
      `[vassal]\nexec = /bin/sh -c '[ "$WATCHDOG_PID" = "$$" ] && [ "$WATCHDOG_USEC" = 2000000 ] || exit 3; while :; do ${SYSTEMD_NOTIFY} WATCHDOG=1; sleep 0.1; done'\nwatchdog = 2\n`,
    );
    emp.write('silent.ini', `[vassal]\nexec = sleep 100\nwatchdog = 0.3\nrestart-delay = 0.1\n`);
    const silent = await emp.waitLine(spawnOf('silent'), 'silent spawned');
    const fired = await emp.waitLine((l) => l.event === 'watchdog' && l.vassal === 'silent', 'watchdog');
    assert.equal(fired.pid, silent.pid);
    const exit = await emp.waitLine((l) => l.event === 'exit' && l.pid === silent.pid, 'exit');
    assert.equal(exit.signal, 'SIGKILL');
    await emp.waitLine((l) => spawnOf('silent')(l) && l.pid !== silent.pid, 'silent restarted');
    const pinger = await emp.waitLine(spawnOf('pinger'), 'pinger spawned');
    // Several of the pinger's watchdog periods pass (by the daemon's clock): it is never killed.
    // Its period is 2 s, not 0.6 s: at load 27, one ping (a fork of sh and systemd-notify) was late.
    await emp.waitLine(
      (l) => l.event === 'watchdog' && (l.time as number) > (pinger.time as number) + 5000,
      'a watchdog of the silent one 2.5 periods of the pinger after it started',
    );
    assert.ok(!emp.lines.some((l) => l.event === 'watchdog' && l.vassal === 'pinger'));
    assert.ok(alive(pinger.pid as number));
  },
);

void test(
  'READY=1 from a process outside the instance is ignored',
  { skip: existsSync(SYSTEMD_NOTIFY) ? false : `${SYSTEMD_NOTIFY} is not installed` },
  async (t) => {
    const emp = await startEmperor(t);
    emp.write(
      'guarded.ini',
      `[vassal]\nexec = /bin/sh -c 'sleep 1.5 && ${SYSTEMD_NOTIFY} --ready && exec sleep 100'\nready = notify\n`,
    );
    const spawned = await emp.waitLine(spawnOf('guarded'), 'spawn');
    const pid = spawned.pid as number;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const notifySocket = environ.find((e) => e.startsWith('NOTIFY_SOCKET='))?.slice('NOTIFY_SOCKET='.length);
    assert.ok(notifySocket?.startsWith('@emperor/'));
    // Sent by a stranger (this test's own process tree), well before the app's own READY=1.
    execFileSync(SYSTEMD_NOTIFY, ['--ready'], { env: { ...process.env, NOTIFY_SOCKET: notifySocket } });
    const running = await emp.waitLine((l) => l.event === 'running' && l.vassal === 'guarded', 'running');
    assert.ok(
      (running.time as number) - (spawned.time as number) >= 1400,
      'running only after the instance itself said READY=1',
    );
  },
);
