// `[uwsgi]` vassal files, run unchanged with Debian's uWSGI 2.0: the emperor owns the sockets it
// can be sure of, hands them over keeping each one's protocol, and rolls reloads; the rest uWSGI
// binds itself and reloads in place on SIGHUP.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  FIXTURES,
  ROOT,
  alive,
  controlSocket,
  freePort,
  getJson,
  keepAliveClient,
  runCli,
  startEmperor,
  settleScans,
  startLoad,
  tempDir,
  waitFor,
  type EmperorProcess,
  type KeepAliveClient,
  type Load,
  type LogLine,
} from './support.js';

const UWSGI = '/usr/bin/uwsgi';
const UWSGI_PYTHON = '/usr/lib/uwsgi/plugins/python3_plugin.so';
const skip =
  existsSync(UWSGI) && existsSync(UWSGI_PYTHON)
    ? false
    : 'uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3)';

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;
const runningOf = (name: string, generation?: number) => (l: LogLine) =>
  l.event === 'running' && l.vassal === name && (generation === undefined || l.generation === generation);

/**
 * Touches NAME's file under the running loads: generation 2 ready, the old master gone, then
 * `after` more requests; none may have failed (each client resends once on a new connection, as
 * HTTP clients do), and generation 2 answers.
 */
/** `n` request loops, each on a kept-alive connection of its own; stopped and closed after the test. */
interface KeepAliveLoad {
  readonly clients: readonly KeepAliveClient[];
  readonly loads: readonly Load[];
  /** The pids that have answered. */
  readonly answered: ReadonlySet<number>;
  readonly ok: () => number;
}

function keepAliveLoad(t: TestContext, port: number, n: number): KeepAliveLoad {
  const clients = Array.from({ length: n }, () => keepAliveClient(port));
  const answered = new Set<number>();
  const loads = clients.map((c) =>
    startLoad(
      t,
      async () => {
        answered.add((await c.get()).pid as number);
      },
      1,
    ),
  );
  t.after(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    for (const c of clients) c.close();
  });
  return { clients, loads, answered, ok: () => loads.reduce((sum, l) => sum + l.ok(), 0) };
}

async function rollUnderLoad(
  t: TestContext,
  emp: EmperorProcess,
  name: string,
  oldMaster: number,
  port: number,
  { clients, loads, ok }: KeepAliveLoad,
  after: number,
): Promise<void> {
  const from = emp.lines.length;
  const later = new Date(Date.now() + 5000);
  utimesSync(join(emp.vassals, `${name}.ini`), later, later);
  await emp.waitLine(runningOf(name, 2), 'generation 2 ready', from);
  await waitFor(() => !alive(oldMaster), { what: 'the old master gone' });
  const okThen = ok();
  await waitFor(() => ok() >= okThen + after, { what: 'requests after the reload' });
  await Promise.all(loads.map((l) => l.stop()));
  const retried = clients.reduce((n, c) => n + c.retried(), 0);
  t.diagnostic(`requests: ${ok()}, sent again after the old master closed their connection: ${retried}`);
  assert.deepEqual(
    loads.flatMap((l) => l.failures),
    [],
    'no request failed during the rolling reload',
  );
  assert.equal((await getJson(port)).generation, '2');
}

/** A uWSGI vassal file as uWSGI users write them: nothing in it is for the emperor. */
const appFile = (sockets: string, extra = ''): string =>
  `[uwsgi]\nplugins = python3\n${sockets}\nmaster = true\nprocesses = 2\nwsgi-file = ${join(FIXTURES, 'wsgi_app.py')}\ncallable = app\n${extra}`;

/** One request in uWSGI's own protocol (a `socket` line): a vars packet, the raw HTTP answer back. */
function uwsgiGet(port: number): Promise<Record<string, unknown>> {
  const vars: [string, string][] = [
    ['REQUEST_METHOD', 'GET'],
    ['PATH_INFO', '/'],
    ['QUERY_STRING', ''],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SERVER_NAME', '127.0.0.1'],
    ['SERVER_PORT', String(port)],
    ['REMOTE_ADDR', '127.0.0.1'],
  ];
  const body = Buffer.concat(
    vars.flatMap(([k, v]) => [u16le(k.length), Buffer.from(k), u16le(v.length), Buffer.from(v)]),
  );
  const header = Buffer.from([0, body.length & 0xff, body.length >> 8, 0]);
  return exchange({ port, host: '127.0.0.1' }, Buffer.concat([header, body]), (all) => {
    const text = all.toString('utf8');
    return text.slice(text.indexOf('\r\n\r\n') + 4);
  });
}

/** One FastCGI request (a `fastcgi-socket` line): BEGIN_REQUEST, PARAMS, STDIN; STDOUT back. */
function fastcgiGet(port: number): Promise<Record<string, unknown>> {
  const record = (type: number, content: Buffer): Buffer => {
    const h = Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 0xff, 0, 0]);
    return Buffer.concat([h, content]);
  };
  const params = Buffer.concat(
    [
      ['REQUEST_METHOD', 'GET'],
      ['SCRIPT_NAME', ''],
      ['PATH_INFO', '/'],
      ['QUERY_STRING', ''],
      ['SERVER_PROTOCOL', 'HTTP/1.1'],
      ['SERVER_NAME', '127.0.0.1'],
      ['SERVER_PORT', String(port)],
    ].map(([k = '', v = '']) => Buffer.concat([Buffer.from([k.length, v.length]), Buffer.from(k + v)])),
  );
  const request = Buffer.concat([
    record(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])),
    record(4, params),
    record(4, Buffer.alloc(0)),
    record(5, Buffer.alloc(0)),
  ]);
  return exchange({ port, host: '127.0.0.1' }, request, (all) => {
    let out = '';
    for (let at = 0; at + 8 <= all.length;) {
      const len = all.readUInt16BE(at + 4);
      if (all[at + 1] === 6) out += all.subarray(at + 8, at + 8 + len).toString('utf8');
      at += 8 + len + (all[at + 6] ?? 0);
    }
    return out.slice(out.indexOf('\r\n\r\n') + 4);
  });
}

/** HTTP GET over a unix socket path. */
function unixGet(socketPath: string): Promise<Record<string, unknown>> {
  return exchange({ path: socketPath }, Buffer.from('GET / HTTP/1.0\r\nHost: x\r\n\r\n'), (all) => {
    const text = all.toString('utf8');
    return text.slice(text.indexOf('\r\n\r\n') + 4);
  });
}

const u16le = (n: number): Buffer => Buffer.from([n & 0xff, n >> 8]);

/** Sends `request`, reads to the server's end of the connection, parses the JSON body. */
function exchange(
  to: { port: number; host: string } | { path: string },
  request: Buffer,
  bodyOf: (all: Buffer) => string,
): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    const s = connect(to);
    const chunks: Buffer[] = [];
    s.setTimeout(20_000, () => s.destroy(new Error('no answer within 20 s')));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('error', fail);
    s.once('end', () => {
      s.destroy();
      const body = bodyOf(Buffer.concat(chunks));
      try {
        done(JSON.parse(body) as Record<string, unknown>);
      } catch {
        fail(new Error(`not JSON: ${JSON.stringify(body.slice(0, 200))}`));
      }
    });
    s.end(request);
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      done(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      done(err.code === 'ECONNREFUSED');
    });
  });
}

const logOf = (emp: EmperorProcess, name: string): string => {
  try {
    return readFileSync(join(emp.logDir, `${name}.log`), 'utf8');
  } catch {
    return '';
  }
};

/** The nice value of a process, from /proc/PID/stat (field 19); NaN once it is gone. */
function niceOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return NaN;
  }
}

/** Pids of a uWSGI master's workers (its children), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

void test(
  'an unchanged [uwsgi] file runs, its http-socket is owned, a touch under load rolls with 0 failed requests, a delete leaves nothing',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const body = appFile(`http-socket = 127.0.0.1:${port}`);
    emp.write('uw.ini', body);
    const spawned = await emp.waitLine(spawnOf('uw'), 'spawn');
    const master = spawned.pid as number;
    await emp.waitLine(runningOf('uw', 1), 'READY=1 from uWSGI');
    const first = await getJson(port);
    assert.equal(first.master, master, "a worker of the emperor's uWSGI master answers over HTTP");
    assert.equal(first.generation, '1');
    const workers = await waitFor(() => childrenOf(master).length >= 2 && childrenOf(master), {
      what: 'processes = 2: two uWSGI workers',
    });

    // The socket is the emperor's: uWSGI took fd 3 as the file's http-socket (`--http-socket
    // fd://3`), once; no LISTEN_FDS, which uWSGI would adopt again with its default protocol.
    const log = await waitFor(
      () => {
        const text = logOf(emp, 'uw');
        return text.includes('inherited INET address') && text;
      },
      { what: "uWSGI's line about the inherited socket in the vassal's log" },
    );
    assert.match(log, new RegExp(`uwsgi socket 0 inherited INET address 127\\.0\\.0\\.1:${port} fd 3`));
    assert.doesNotMatch(log, /SystemD socket activation|uwsgi socket 1 /);
    const logged = emp.lines.find((l) => l.event === 'uwsgi-sockets' && l.vassal === 'uw');
    assert.deepEqual(logged?.owned, [`http-socket 127.0.0.1:${port}`], "the emperor's log says what it owns");
    assert.doesNotMatch(log, /invalid request block size|Address already in use/);
    const shown = await runCli(['show', 'uw', '--json'], { control: controlSocket(emp) });
    assert.equal(shown.code, 0, shown.stderr);
    const s = JSON.parse(shown.stdout) as {
      argv: string[];
      sockets: { address: string; fd: number }[];
      uwsgi_sockets: {
        key: string;
        address: string;
        owned: boolean;
        fd: number | null;
        reason: string | null;
      }[];
    };
    assert.deepEqual(s.sockets, [{ name: null, address: `127.0.0.1:${port}`, fd: 3 }]);
    assert.deepEqual(s.uwsgi_sockets, [
      { key: 'http-socket', address: `127.0.0.1:${port}`, line: 3, owned: true, fd: 3, reason: null },
    ]);
    assert.deepEqual(s.argv.slice(0, 4), ['uwsgi', '--http-socket', 'fd://3', '--ini'], s.argv.join(' '));
    const text = await runCli(['show', 'uw'], { control: controlSocket(emp) });
    assert.match(text.stdout, new RegExp(`http-socket 127\\.0\\.0\\.1:${port}: owned, fd 3`));

    // A touch: a new master on the same socket, ready before the old one stops gracefully.
    // uWSGI 2.0's http-socket closes each connection after its answer (no keep-alive: a kept-alive
    // client fails on its second request with or without a reload), so clients connect per request.
    const load = startLoad(t, () => getJson(port), 4);
    await waitFor(() => load.ok() >= 20, { what: 'requests before the reload' });
    const from = emp.lines.length;
    const later = new Date(Date.now() + 5000);
    utimesSync(join(emp.vassals, 'uw.ini'), later, later); // a touch, as uWSGI users deploy
    const second = await emp.waitLine(spawnOf('uw'), 'the new master', from);
    await emp.waitLine(runningOf('uw', 2), 'generation 2 ready', from);
    await waitFor(() => !alive(master), { what: 'the old master gone' });
    const okThen = load.ok();
    await waitFor(() => load.ok() >= okThen + 20, { what: 'requests after the reload' });
    await load.stop();
    assert.deepEqual(load.failures, [], 'no request failed during the rolling reload');
    const after = await getJson(port);
    assert.equal(after.generation, '2');
    assert.equal(after.master, second.pid);
    assert.ok(
      workers.every((w) => !alive(w)),
      'the old workers are gone',
    );

    const newWorkers = childrenOf(second.pid as number);
    rmSync(join(emp.vassals, 'uw.ini'));
    // `removed` comes once every process has exited: uWSGI's graceful stop waits for its workers
    // (a worker left at the booting priority used to hold it until stop-timeout; see below).
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'uw', 'removed', from);
    for (const pid of [second.pid as number, ...newWorkers])
      assert.ok(!alive(pid), `uWSGI process ${pid} is gone`);
    assert.ok(await refused(port), 'the port is closed');
  },
);

void test(
  'a [uwsgi] file with an include runs with uWSGI binding its socket, and a touch reloads it gracefully in place',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t, { args: ['--uwsgi', UWSGI] }); // the binary named, not PATH's
    const extra = join(emp.dir, 'extra.ini');
    writeFileSync(extra, '[uwsgi]\nenable-threads = true\n');
    const body = appFile(`http-socket = 127.0.0.1:${port}`, `ini = ${extra}\n`);
    emp.write('inc.ini', body);
    const spawned = await emp.waitLine(spawnOf('inc'), 'spawn');
    await emp.waitLine(runningOf('inc', 1), 'READY=1 from uWSGI');
    const warning = emp.lines.find((l) => l.event === 'config-warning' && l.vassal === 'inc');
    assert.equal(warning?.code, 'EMP_CONFIG_UWSGI_NOT_OWNED');
    assert.match(String(warning.msg), /includes config the emperor does not read/);
    const logged = emp.lines.find((l) => l.event === 'uwsgi-sockets' && l.vassal === 'inc');
    assert.deepEqual(logged?.owned, []);
    assert.match(JSON.stringify(logged.not_owned), /includes config the emperor does not read/);
    assert.equal((await getJson(port)).master, spawned.pid);
    await waitFor(() => logOf(emp, 'inc').includes(`bound to TCP address 127.0.0.1:${port}`), {
      what: 'uWSGI binding the socket itself',
    });
    const shown = await runCli(['show', 'inc'], { control: controlSocket(emp) });
    assert.match(shown.stdout, /^argv: +\/usr\/bin\/uwsgi --ini /m);
    assert.match(
      shown.stdout,
      /http-socket 127\.0\.0\.1:\d+: bound by uWSGI \(`ini = .*` \(line \d+\) includes/,
    );

    const oldWorkers = await waitFor(
      () => childrenOf(spawned.pid as number).length >= 2 && childrenOf(spawned.pid as number),
      {
        what: 'two uWSGI workers',
      },
    );
    const load = startLoad(t, () => getJson(port), 3);
    await waitFor(() => load.ok() >= 10, { what: 'requests before the reload' });
    const from = emp.lines.length;
    emp.write('inc.ini', body + 'env = DEPLOY=2\n');
    await waitFor(() => logOf(emp, 'inc').includes('gracefully (RE)spawned uWSGI master process'), {
      what: "uWSGI's graceful reload",
    });
    await waitFor(
      () =>
        getJson(port).then(
          (j) => !oldWorkers.includes(j.pid as number),
          () => false,
        ),
      {
        what: 'a new worker of the reloaded master answering',
      },
    );
    const okThen = load.ok();
    await waitFor(() => load.ok() >= okThen + 10, { what: 'requests after the reload' });
    await load.stop();
    assert.equal(
      emp.lines.slice(from).filter(spawnOf('inc')).length,
      0,
      'the same master, reloaded in place',
    );
    assert.ok(alive(spawned.pid as number));
    assert.deepEqual(load.failures, [], "no request failed during uWSGI's graceful reload");
  },
);

void test(
  'every socket kind keeps its protocol when owned: http-socket on TCP, :PORT and a unix path, socket (uwsgi protocol), fastcgi-socket; all roll together',
  { skip },
  async (t) => {
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const emp = await startEmperor(t);
    const unixPath = join(emp.dir, 'h.sock');
    const sockets = [
      `http-socket = ${unixPath}`,
      `socket = 127.0.0.1:${p1}`,
      `fastcgi-socket = 127.0.0.1:${p2}`,
      `http-socket = :${p3}`,
    ].join('\n');
    // vacuum: uWSGI removes the unix sockets it bound at exit; an inherited one must survive the old master.
    const body = appFile(sockets, 'vacuum = true\n');
    emp.write('kinds.ini', body);
    const spawned = await emp.waitLine(spawnOf('kinds'), 'spawn');
    await emp.waitLine(runningOf('kinds', 1), 'READY=1 from uWSGI');
    const ask = (): Promise<Record<string, unknown>[]> =>
      Promise.all([unixGet(unixPath), uwsgiGet(p1), fastcgiGet(p2), getJson(p3)]);
    for (const answer of await ask()) assert.equal(answer.master, spawned.pid);
    const shown = await runCli(['show', 'kinds', '--json'], { control: controlSocket(emp) });
    const s = JSON.parse(shown.stdout) as { uwsgi_sockets: { key: string; owned: boolean; fd: number }[] };
    assert.deepEqual(
      s.uwsgi_sockets.map((u) => [u.key, u.owned, u.fd]),
      [
        ['http-socket', true, 3],
        ['socket', true, 4],
        ['fastcgi-socket', true, 5],
        ['http-socket', true, 6],
      ],
    );
    assert.doesNotMatch(logOf(emp, 'kinds'), /invalid request block size|Address already in use/);

    const from = emp.lines.length;
    emp.write('kinds.ini', body + 'env = DEPLOY=2\n');
    const second = await emp.waitLine(spawnOf('kinds'), 'the new master', from);
    await emp.waitLine(runningOf('kinds', 2), 'generation 2 ready', from);
    await waitFor(() => !alive(spawned.pid as number), { what: 'the old master gone' });
    for (const answer of await ask()) {
      assert.equal(answer.master, second.pid);
      assert.equal(answer.generation, '2');
    }
  },
);

void test(
  'emperor check reads a [uwsgi] file as far as the emperor does: sockets, conflicts, the binary and its plugins, and says what it leaves to uWSGI',
  { skip },
  async (t) => {
    const dir = tempDir(t);
    const port = await freePort();
    writeFileSync(join(dir, 'good.ini'), appFile(`http-socket = 127.0.0.1:${port}`));
    writeFileSync(
      join(dir, 'noplugin.ini'),
      `[uwsgi]\nplugins = python3,nosuch\nhttp-socket = 127.0.0.1:${port + 1}\n`,
    );
    // Older than `router.ini`: it claims the port first, and the newcomer is blamed.
    writeFileSync(join(dir, 'app.ini'), `[vassal]\nexec = /bin/sleep 1000\nsocket = 127.0.0.1:${port + 2}\n`);
    utimesSync(join(dir, 'app.ini'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    writeFileSync(
      join(dir, 'router.ini'),
      `[uwsgi]\nhttp = 127.0.0.1:${port + 2}\nsocket = 127.0.0.1:${port + 3}\n`,
    );

    const r = await runCli(['check', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /good\.ini: ok\n.*good\.ini: a uWSGI vassal: checked are its listening addresses/);
    assert.match(
      r.stderr,
      /noplugin\.ini:2: error: uWSGI \(\/usr\/bin\/uwsgi\) cannot load the plugin `nosuch`: .*\[EMP_CONFIG_UWSGI_PLUGIN\]/,
    );
    assert.doesNotMatch(r.stderr, /plugin `python3`/);
    assert.match(
      r.stderr,
      /router\.ini:2: warning: uWSGI binds `http = .*` itself \(`http` starts uWSGI's HTTP router/,
    );
    assert.match(
      r.stderr,
      new RegExp(
        `router\\.ini:2: error: socket \`127\\.0\\.0\\.1:${port + 2}\` overlaps .* of vassal \`app\`.*\\[EMP_VASSAL_SOCKET_CONFLICT\\]`,
      ),
    );

    const missing = await runCli(['check', '--uwsgi', '/nonexistent/uwsgi', join(dir, 'good.ini')]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /good\.ini: error: the emperor runs this file with `\/nonexistent\/uwsgi`, which is not an executable file.*\[EMP_CONFIG_UWSGI_BINARY\]/,
    );
    const json = JSON.parse((await runCli(['check', '--json', join(dir, 'good.ini')])).stdout) as {
      files: { ok: boolean; not_checked: string | null; config: { argv: string[] } }[];
    };
    const [good] = json.files;
    assert.ok(good);
    assert.equal(good.ok, true);
    assert.match(good.not_checked ?? '', /the rest of the file .* is uWSGI's/);
    assert.deepEqual(good.config.argv.slice(1, 3), ['--http-socket', 'fd://3']);
  },
);

void test(
  'with lazy-apps, a uWSGI vassal is ready once its first worker has loaded the app and accepts, not at the master READY=1',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    // IMPORT_DELAY: the app takes 2 s to import in each worker, after uWSGI's READY=1.
    emp.write(
      'lazy.ini',
      appFile(`http-socket = 127.0.0.1:${port}`, 'lazy-apps = true\nenv = IMPORT_DELAY=2\n'),
    );
    const running = await emp.waitLine(runningOf('lazy', 1), 'lazy running');
    const imported = await waitFor(
      () =>
        logOf(emp, 'lazy')
          .split('\n')
          .filter((l) => l.startsWith('{"event": "imported"'))
          .map((l) => (JSON.parse(l) as { time: number }).time)[0],
      { what: 'a worker has imported the app' },
    );
    assert.ok(
      (running.time as number) >= imported,
      `ready at ${String(running.time)}, the first worker imported the app at ${imported}`,
    );
    assert.equal((await getJson(port)).generation, '1');
  },
);

void test(
  "uWSGI's own touch-reload inside the file still works on the owned socket: the same master reloads in place, nothing fails",
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const trigger = join(emp.dir, 'reload.trigger');
    writeFileSync(trigger, '');
    emp.write('tr.ini', appFile(`http-socket = 127.0.0.1:${port}`, `touch-reload = ${trigger}\n`));
    const spawned = await emp.waitLine(spawnOf('tr'), 'spawn');
    await emp.waitLine(runningOf('tr', 1), 'READY=1 from uWSGI');
    const master = spawned.pid as number;
    const oldWorkers = await waitFor(() => childrenOf(master).length >= 2 && childrenOf(master), {
      what: 'two uWSGI workers',
    });
    const load = startLoad(t, () => getJson(port), 3);
    await waitFor(() => load.ok() >= 10, { what: 'requests before the reload' });
    const from = emp.lines.length;
    const later = new Date(Date.now() + 5000);
    utimesSync(trigger, later, later);
    await waitFor(() => logOf(emp, 'tr').includes('gracefully (RE)spawned uWSGI master process'), {
      what: "uWSGI's own graceful reload",
    });
    await waitFor(
      () =>
        getJson(port).then(
          (j) => !oldWorkers.includes(j.pid as number),
          () => false,
        ),
      { what: 'a new worker of the same master answering' },
    );
    const okThen = load.ok();
    await waitFor(() => load.ok() >= okThen + 10, { what: 'requests after the reload' });
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.ok(alive(master), 'the same master');
    assert.equal(emp.lines.slice(from).filter(spawnOf('tr')).length, 0, 'the emperor started nothing');
    assert.doesNotMatch(logOf(emp, 'tr'), /Address already in use|invalid request block size/);
  },
);

void test(
  'a file with [vassal] and [uwsgi] sections: uWSGI reads [uwsgi], the emperor [vassal]; on-demand runs nothing until the first request, which uWSGI answers on its owned http-socket',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const body = `[vassal]\non-demand = true\nenv = DEPLOY=from-vassal\n\n${appFile(`http-socket = 127.0.0.1:${port}`)}`;
    emp.write('both.ini', body);
    await emp.waitLine((l) => l.event === 'waiting' && l.vassal === 'both', 'waiting for a first client');
    assert.equal(emp.lines.filter(spawnOf('both')).length, 0, 'nothing runs before the first request');
    const shown = await runCli(['show', 'both', '--json'], { control: controlSocket(emp) });
    assert.equal(shown.code, 0, shown.stderr);
    const s = JSON.parse(shown.stdout) as {
      argv: string[];
      uwsgi_sockets: { key: string; owned: boolean }[];
    };
    assert.deepEqual(s.argv.slice(0, 5), [
      'uwsgi',
      '--http-socket',
      'fd://3',
      '--ini',
      join(emp.vassals, 'both.ini'),
    ]);
    assert.ok(s.argv.includes('--die-on-term'), s.argv.join(' '));
    assert.deepEqual(
      s.uwsgi_sockets.map((u) => [u.key, u.owned]),
      [['http-socket', true]],
    );

    const first = await getJson(port); // the connection waits in the emperor's socket
    const spawned = await emp.waitLine(spawnOf('both'), 'spawn on the first request');
    assert.equal(first.master, spawned.pid, "a worker of the emperor's uWSGI master answers");
    assert.equal(first.deploy, 'from-vassal', "the [vassal] section's env reached the app");
    assert.doesNotMatch(logOf(emp, 'both'), /invalid request block size|Address already in use/);
  },
);

void test('a file with both sections refuses listening addresses in both, and on-demand on addresses uWSGI binds itself', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  writeFileSync(
    join(dir, 'twice.ini'),
    `[vassal]\nsocket = 127.0.0.1:${port}\n[uwsgi]\nhttp-socket = 127.0.0.1:${port + 1}\n`,
  );
  writeFileSync(
    join(dir, 'inc.ini'),
    `[vassal]\non-demand = true\n[uwsgi]\nini = other.ini\nhttp-socket = 127.0.0.1:${port + 2}\n`,
  );
  const r = await runCli(['check', dir]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /twice\.ini:2: error: both sections declare listening addresses \(`\[vassal\]` `socket` here, `\[uwsgi\]` `http-socket` on line 4\).*\[EMP_CONFIG_UWSGI_SOCKETS\]/,
  );
  assert.match(
    r.stderr,
    /inc\.ini:2: error: `on-demand = true` needs a socket the emperor owns, and uWSGI binds `http-socket = .*` itself \(`ini = other\.ini` \(line 4\) includes/,
  );
});

void test("a file with both sections keeps uWSGI's other sections ([prod]) with a warning naming the line, refuses a typo, and docs/uwsgi.md's example checks clean", async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  writeFileSync(
    join(dir, 'prod.ini'),
    `[vassal]\non-demand = true\n\n[uwsgi]\nhttp-socket = 127.0.0.1:${port}\nmaster = true\n\n[prod]\nprocesses = 8\n`,
  );
  writeFileSync(
    join(dir, 'typo.ini'),
    `[vassal]\n[uwsgi]\nhttp-socket = 127.0.0.1:${port + 1}\n[vasal]\nidle = 1\n`,
  );
  const doc = readFileSync(join(ROOT, 'docs', 'uwsgi.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## A file with both sections'), doc.indexOf('## Tyrant mode'));
  const example = /```ini\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  assert.ok(example.includes('[vassal]') && example.includes('[uwsgi]'), 'the example of both sections');
  writeFileSync(join(dir, 'shop.ini'), example.replace('127.0.0.1:8000', `127.0.0.1:${port + 2}`));

  const r = await runCli(['check', dir]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /prod\.ini: ok/);
  assert.match(
    r.stderr,
    /prod\.ini:8: warning: section `\[prod\]` is read by neither the emperor \(`\[vassal\]`\) nor `uwsgi --ini FILE` \(`\[uwsgi\]`\): uWSGI reads it only where `\[uwsgi\]` includes it \(`ini = %p:prod`\) \[EMP_CONFIG_UWSGI_OTHER_SECTION\]/,
  );
  assert.match(
    r.stderr,
    /typo\.ini:4: error: unknown section `\[vasal\]`: did you mean `\[vassal\]`\? \[EMP_CONFIG_UNKNOWN_SECTION\]/,
  );
  assert.match(r.stdout, /shop\.ini: ok/);
  assert.doesNotMatch(r.stderr, /shop\.ini.*error/);
});

void test(
  'http11-socket keeps connections alive; a touch under a steady keep-alive load is a rolling reload with 0 failed requests',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const body = appFile(`http11-socket = 127.0.0.1:${port}`);
    emp.write('ka.ini', body);
    const spawned = await emp.waitLine(spawnOf('ka'), 'spawn');
    await emp.waitLine(runningOf('ka', 1), 'READY=1 from uWSGI');
    // 8 loops, each on a connection of its own.
    const load = keepAliveLoad(t, port, 8);
    await waitFor(() => load.ok() >= 200, { what: 'requests before the reload' });
    assert.equal(
      load.clients.reduce((n, c) => n + c.connections(), 0),
      8,
      'uWSGI kept each connection alive',
    );
    await rollUnderLoad(t, emp, 'ka', spawned.pid as number, port, load, 200);
  },
);

void test(
  'processes = 4 under a keep-alive load on an owned http11-socket: every worker serves the one socket, uWSGI lists it once, a touch rolls with 0 failed requests',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    emp.write(
      'four.ini',
      appFile(`http11-socket = 127.0.0.1:${port}`).replace('processes = 2', 'processes = 4'),
    );
    const spawned = await emp.waitLine(spawnOf('four'), 'spawn');
    await emp.waitLine(runningOf('four', 1), 'READY=1 from uWSGI');
    // As many connections as workers: a sync worker serves one connection until it closes, so
    // each worker holds one and the listening socket's queue is empty. uWSGI 2.0 then polls with
    // timeout 0, which is where a second, fd-less entry of the same socket used to crash it.
    const load = keepAliveLoad(t, port, 4);
    await waitFor(() => load.ok() >= 400, { what: 'requests before the reload' });
    const workers = await waitFor(
      () => childrenOf(spawned.pid as number).length >= 4 && childrenOf(spawned.pid as number),
      {
        what: 'four uWSGI workers',
      },
    );
    assert.deepEqual(
      [...load.answered].sort(),
      [...workers].sort(),
      'each of the 4 workers answers on its kept-alive connection',
    );
    await rollUnderLoad(t, emp, 'four', spawned.pid as number, port, load, 400);

    // Each master lists the socket once: the `fd://3` hand-over, no LISTEN_FDS copy of it, and
    // the file's own line skipped. No worker died on the way.
    const log = logOf(emp, 'four');
    const listed = log.split('\n').filter((l) => /^uwsgi (zerg )?socket \d+ /.test(l));
    assert.deepEqual(
      listed,
      [0, 1].map(() => `uwsgi socket 0 inherited INET address 127.0.0.1:${port} fd 3`),
      'one socket per master (two masters: before and after the touch)',
    );
    assert.doesNotMatch(
      log,
      /SystemD socket activation|epoll_ctl\(\): File exists|Segmentation Fault|DAMN ! worker/,
    );
  },
);

void test(
  'a delete right after a rolling reload under keep-alive load: every new worker runs at full priority and uWSGI stops gracefully by itself, before stop-timeout',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    const body = appFile(`http11-socket = 127.0.0.1:${port}`).replace('processes = 2', 'processes = 4');
    emp.write('gone.ini', body);
    await emp.waitLine(runningOf('gone', 1), 'READY=1 from uWSGI');
    const load = keepAliveLoad(t, port, 4);
    await waitFor(() => load.ok() >= 100, { what: 'requests before the reload' });
    const from = emp.lines.length;
    const later = new Date(Date.now() + 5000);
    utimesSync(join(emp.vassals, 'gone.ini'), later, later);
    const second = (await emp.waitLine(spawnOf('gone'), 'the new master', from)).pid as number;
    await emp.waitLine(runningOf('gone', 2), 'generation 2 ready', from);
    // The new master booted at a lower priority and forks its workers right at READY=1: each
    // of them gets the emperor's priority back, not only the ones forked after it was restored.
    const workers = await waitFor(() => childrenOf(second).length >= 4 && childrenOf(second), {
      what: 'four workers of the new master',
    });
    const own = niceOf(process.pid);
    await waitFor(() => [second, ...workers].every((p) => niceOf(p) === own), {
      what: `the new master and its workers at the emperor's priority (${own}): ${[second, ...workers].map((p) => `${p}=${niceOf(p)}`).join(' ')}`,
    });

    // uWSGI says READY=1 before it forks its workers, and a worker ignores SIGHUP until it has
    // set up its handlers: the delete comes once each new worker answers its kept-alive client.
    await waitFor(() => workers.every((w) => load.answered.has(w)), { what: 'each new worker answering' });
    const stopFrom = emp.lines.length;
    rmSync(join(emp.vassals, 'gone.ini'));
    await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'gone', 'removed', stopFrom);
    const killed = emp.lines
      .slice(stopFrom)
      .filter((l) => l.vassal === 'gone' && /timeout|kill/.test(String(l.event)));
    assert.deepEqual(killed, [], 'uWSGI ended by itself, not by the emperor after stop-timeout');
    const log = logOf(emp, 'gone');
    for (const w of workers)
      assert.match(
        log,
        new RegExp(`Gracefully killing worker \\d+ \\(pid: ${w}\\)`),
        `worker ${w} took the graceful stop`,
      );
    assert.ok(await refused(port), 'the port is closed');
  },
);

void test(
  'the running emperor refuses a [uwsgi] vassal whose address uWSGI would bind itself when another vassal holds it, as emperor check does',
  { skip },
  async (t) => {
    const port = await freePort();
    const emp = await startEmperor(t);
    emp.write('app.ini', `[vassal]\nexec = /bin/sleep 1000\nsocket = 127.0.0.1:${port}\n`);
    await emp.waitLine(spawnOf('app'), 'the holder runs');
    // `http` is uWSGI's router: uWSGI binds it, the emperor does not own it.
    emp.write('router.ini', `[uwsgi]\nhttp = 127.0.0.1:${port}\nsocket = 127.0.0.1:${port + 1}\n`);
    const refusedLine = await emp.waitLine(
      (l) => l.event === 'config-error' && l.vassal === 'router',
      'the newcomer refused',
    );
    assert.equal(refusedLine.code, 'EMP_VASSAL_SOCKET_CONFLICT');
    assert.match(
      String(refusedLine.msg),
      new RegExp(`router\\.ini:2: error: socket \`127\\.0\\.0\\.1:${port}\` overlaps .* of vassal \`app\``),
    );
    const check = await runCli(['check', emp.vassals]);
    assert.equal(check.code, 1);
    assert.match(
      check.stderr,
      /router\.ini:2: error: socket .* of vassal `app`.*\[EMP_VASSAL_SOCKET_CONFLICT\]/,
    );
    await settleScans(emp);
    assert.equal(emp.lines.filter(spawnOf('router')).length, 0, 'uWSGI was not started to fail binding');
  },
);

void test(
  "three existing uWSGI files in one directory (http-socket, socket with uWSGI's protocol and stats, an include with logto): emperor check passes them and emperor run --vassals DIR runs each",
  { skip },
  async (t) => {
    const [p1, p2, p3, stats] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const emp = await startEmperor(t);
    const app = join(FIXTURES, 'wsgi_app.py');
    const base = join(emp.dir, 'base.ini'); // outside the vassal directory: it is no vassal
    writeFileSync(base, '[uwsgi]\nplugins = python3\nmaster = true\nvacuum = true\n');
    const files: Record<string, string> = {
      'blog.ini': `[uwsgi]\nproject = blog\nplugins = python3\nwsgi-file = ${app}\ncallable = app\nmaster = true\nprocesses = 2\nthreads = 2\nharakiri = 30\nhttp-socket = 127.0.0.1:${p1}\n`,
      'api.ini': `; nginx: uwsgi_pass 127.0.0.1:${p2};\n[uwsgi]\nplugins = python3\nsocket = 127.0.0.1:${p2}\nwsgi-file = ${app}\ncallable = app\nmaster = true\nprocesses = 2\nstats = 127.0.0.1:${stats}\n`,
      'shop.ini': `[uwsgi]\nini = ${base}\nwsgi-file = ${app}\ncallable = app\nenv = DEPLOY=production\nhttp-socket = 127.0.0.1:${p3}\nprocesses = 2\ncheaper = 1\nlogto = ${join(emp.dir, 'shop-uwsgi.log')}\n`,
    };
    for (const [name, body] of Object.entries(files)) writeFileSync(join(emp.dir, name), body);
    const check = await runCli(['check', ...Object.keys(files).map((f) => join(emp.dir, f))]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stderr, /api\.ini:\d+: warning: uWSGI binds `stats = /);
    assert.match(check.stderr, /shop\.ini:\d+: warning: uWSGI binds `http-socket = .*` itself \(`ini = /);
    for (const [name, body] of Object.entries(files)) emp.write(name, body);
    for (const name of ['blog', 'api', 'shop']) await emp.waitLine(runningOf(name, 1), `${name} running`);
    assert.equal((await getJson(p1)).vassal, 'blog');
    assert.equal((await uwsgiGet(p2)).vassal, 'api');
    const shop = await getJson(p3);
    assert.equal(shop.vassal, 'shop');
    assert.equal(shop.deploy, 'production');
    await waitFor(() => readFileSync(join(emp.dir, 'shop-uwsgi.log'), 'utf8').includes('GET /'), {
      what: "shop's requests in the file its logto names",
    });
    const owned = (name: string): unknown =>
      emp.lines.find((l) => l.event === 'uwsgi-sockets' && l.vassal === name)?.owned;
    assert.deepEqual(
      ['blog', 'api', 'shop'].map(owned),
      [[`http-socket 127.0.0.1:${p1}`], [], []],
      'blog is owned; api (stats) and shop (an include) are bound by uWSGI',
    );
  },
);

void test(
  "docs/uwsgi.md's migration example runs as documented: its vassal file, `emperor check DIR`, `emperor run --vassals DIR`",
  { skip },
  async (t) => {
    const doc = readFileSync(join(ROOT, 'docs', 'uwsgi.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Migrating'), doc.indexOf('### What runs unchanged'));
    const ini = /```ini\n([\s\S]*?)```/.exec(section)?.[1];
    const sh = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(ini !== undefined && sh !== undefined, 'the example and its commands');
    const docDir = '/etc/uwsgi/vassals';
    assert.deepEqual(sh.trim().split('\n'), [`emperor check ${docDir}`, `emperor run --vassals ${docDir}`]);
    const port = await freePort();
    const emp = await startEmperor(t); // `emperor run --vassals DIR` (and where to put its logs)
    const file = ini.replace('127.0.0.1:8000', `127.0.0.1:${port}`);
    assert.notEqual(file, ini);
    writeFileSync(join(emp.vassals, 'app.py'), readFileSync(join(FIXTURES, 'wsgi_app.py')));
    emp.write('shop.ini', file);
    const check = await runCli(['check', emp.vassals]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /shop\.ini: ok/);
    const spawned = await emp.waitLine(spawnOf('shop'), 'spawn');
    await emp.waitLine(runningOf('shop', 1), 'READY=1 from uWSGI');
    assert.equal((await getJson(port)).master, spawned.pid);
  },
);
