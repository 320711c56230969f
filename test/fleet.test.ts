// Vassals defined in etcd (docs/fleet.md): a real etcd on loopback ports, real emperors, and what
// runs after each put, delete, outage and compaction.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  alive,
  controlSocket,
  envOf,
  runCli,
  sleeper,
  startEmperor,
  waitFor,
  type EmperorProcess,
  type LogLine,
} from './support.js';
import { startEtcd, startRelay, type Etcd } from './etcd-support.js';

let etcd: Etcd;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd.destroy();
});

/** Each test its own prefix: the tests share one etcd. */
let prefixes = 0;
const newPrefix = (): string => `/t${process.pid}-${++prefixes}`;

/** An emperor watching its own directory and `url`, its cache under its own directory. */
async function fleetEmperor(
  t: Parameters<typeof startEmperor>[0],
  url: string,
  opts: { dir?: string; files?: Record<string, string>; node?: string } = {},
): Promise<EmperorProcess> {
  const dir = opts.dir ?? mkdtempSync('/tmp/emp-');
  return startEmperor(t, {
    dir,
    ...(opts.files ? { files: opts.files } : {}),
    args: [
      '--vassals',
      url,
      '--state-dir',
      join(dir, 'state'),
      ...(opts.node === undefined ? [] : ['--node-name', opts.node]),
    ],
  });
}

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;

async function spawned(emp: EmperorProcess, name: string, from: number, version?: string): Promise<number> {
  const line = await emp.waitLine(spawnOf(name), `spawn of ${name}`, from);
  const pid = line.pid as number;
  if (version !== undefined) {
    const v = await waitFor(() => envOf(pid).V, { what: `the environment of ${pid}` });
    assert.equal(v, version, `${name} runs version ${version}`);
  }
  return pid;
}

interface StatusJson {
  emperor: {
    stores?: { source: string; connected: boolean; from_cache: boolean; revision: string | null }[];
  };
  vassals: {
    name: string;
    file: string;
    state: string;
    generation: number;
    error: { code: string; message: string; file?: string; line?: number } | null;
  }[];
}

async function status(emp: EmperorProcess): Promise<StatusJson> {
  const r = await runCli(['status', '--json'], { control: controlSocket(emp) });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusJson;
}

void test('a put starts the vassal, a new text reloads it, a delete stops it; directories beside it are untouched', async (t) => {
  const prefix = newPrefix();
  const emp = await fleetEmperor(t, etcd.url(prefix), { files: { 'local.ini': sleeper('file') } });
  const local = await spawned(emp, 'local', 0, 'file');

  let from = emp.lines.length;
  await etcd.put(`${prefix}/vassals/shop`, sleeper(1));
  const first = await spawned(emp, 'shop', from, '1');
  const shop = (await status(emp)).vassals.find((v) => v.name === 'shop');
  assert.equal(shop?.file, `etcd://${etcd.endpoint}${prefix}/vassals/shop`);

  from = emp.lines.length;
  await etcd.put(`${prefix}/vassals/shop`, sleeper(2));
  const second = await spawned(emp, 'shop', from, '2');
  assert.notEqual(second, first);
  await waitFor(() => !alive(first), { what: `the first generation ${first} gone` });

  from = emp.lines.length;
  await etcd.del(`${prefix}/vassals/shop`);
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'shop', 'shop removed', from);
  await waitFor(() => !alive(second), { what: `shop's process ${second} gone` });
  // Every update of the store replaced only its own part of the desired set.
  assert.ok(alive(local), 'the vassal from the directory still runs');
  assert.equal(emp.lines.filter(spawnOf('local')).length, 1, 'and was never restarted');
});

void test('a put of the same text (a new mod_revision) is a touch: the vassal reloads into a new generation', async (t) => {
  const prefix = newPrefix();
  const key = `${prefix}/vassals/same`;
  await etcd.put(key, sleeper(1));
  const emp = await fleetEmperor(t, etcd.url(prefix));
  const first = await spawned(emp, 'same', 0, '1');
  const before = (await status(emp)).vassals.find((v) => v.name === 'same');
  assert.equal(before?.generation, 1);

  const from = emp.lines.length;
  await etcd.put(key, sleeper(1));
  const second = await spawned(emp, 'same', from, '1');
  assert.notEqual(second, first, 'a new process runs the same text');
  await waitFor(() => !alive(first), { what: `the first generation ${first} gone` });
  const after = await waitFor(
    async () => {
      const v = (await status(emp)).vassals.find((x) => x.name === 'same');
      return v?.state === 'running' && v.generation === 2 && v;
    },
    { what: 'same running as generation 2' },
  );
  assert.equal(after.error, null);
});

void test('a bad value in etcd keeps the running generation, and its error names the key and the line', async (t) => {
  const prefix = newPrefix();
  const key = `${prefix}/vassals/api`;
  await etcd.put(key, sleeper(1));
  const emp = await fleetEmperor(t, etcd.url(prefix));
  const pid = await spawned(emp, 'api', 0, '1');

  const from = emp.lines.length;
  await etcd.put(key, `${sleeper(2)}processes = many\n`);
  const err = await emp.waitLine(
    (l) => l.event === 'config-error' && l.vassal === 'api',
    'the config error of api',
    from,
  );
  assert.equal(err.file, `etcd://${etcd.endpoint}${key}`);
  assert.equal(err.line, 5);
  assert.match(String(err.msg), new RegExp(`^etcd://${etcd.endpoint}${key}:5: error: invalid \`processes\``));
  const api = (await status(emp)).vassals.find((v) => v.name === 'api');
  assert.equal(api?.state, 'running');
  assert.equal(api.error?.code, 'EMP_CONFIG_INVALID_VALUE');
  assert.ok(alive(pid), 'the running generation keeps serving');
  assert.equal(emp.lines.slice(from).filter(spawnOf('api')).length, 0, 'nothing was started');
});

void test('etcd stopped for 10 s: every vassal keeps running, and changes made after it returns are applied', async (t) => {
  const prefix = newPrefix();
  await etcd.put(`${prefix}/vassals/web`, sleeper(1));
  const emp = await fleetEmperor(t, etcd.url(prefix));
  const pid = await spawned(emp, 'web', 0, '1');

  const from = emp.lines.length;
  await etcd.stop();
  try {
    await emp.waitLine((l) => l.event === 'etcd-unreachable', 'etcd-unreachable', from);
    const down = (await status(emp)).emperor.stores?.[0];
    assert.equal(down?.connected, false);
    const stoppedAt = Date.now();
    // The outage itself is what is tested: 10 s of it, watched for anything the emperor does.
    await waitFor(() => Date.now() - stoppedAt >= 10_000 || undefined, {
      what: '10 s of outage',
      interval: 250,
    });
    assert.ok(alive(pid), 'the vassal runs through the outage');
  } finally {
    await etcd.start();
  }
  await emp.waitLine((l) => l.event === 'etcd-reconnected', 'etcd-reconnected', from);
  assert.deepEqual(
    emp.lines
      .slice(from)
      .filter(
        (l) =>
          l.vassal === 'web' && ['removed', 'stopped', 'spawn', 'generation-start'].includes(String(l.event)),
      ),
    [],
    'nothing of web was stopped or started again',
  );
  const later = emp.lines.length;
  await etcd.put(`${prefix}/vassals/web`, sleeper(2));
  await spawned(emp, 'web', later, '2');
  assert.equal((await status(emp)).emperor.stores?.[0]?.connected, true);
});

void test('an emperor started while etcd is down runs the cached set, says so, and catches up when it returns', async (t) => {
  const prefix = newPrefix();
  await etcd.put(`${prefix}/vassals/cached`, sleeper(1));
  const dir = mkdtempSync('/tmp/emp-');
  const first = await fleetEmperor(t, etcd.url(prefix), { dir });
  await spawned(first, 'cached', 0, '1');
  assert.equal(await first.stop(), 0);

  await etcd.stop();
  let emp: EmperorProcess;
  try {
    emp = await fleetEmperor(t, etcd.url(prefix), { dir });
    await emp.waitLine((l) => l.event === 'etcd-cache-used', 'etcd-cache-used');
    await spawned(emp, 'cached', 0, '1');
    const store = (await status(emp)).emperor.stores?.[0];
    assert.equal(store?.connected, false);
    assert.equal(store.from_cache, true);
    const table = await runCli(['status'], { control: controlSocket(emp) });
    assert.match(
      table.stdout.replace(/\s+/g, ' '),
      /is unreachable since .* running the set cached at revision/,
    );
  } finally {
    await etcd.start();
  }
  // Changed while it was down (for this emperor): the full read applies it.
  const from = emp.lines.length;
  await etcd.put(`${prefix}/vassals/cached`, sleeper(2));
  await spawned(emp, 'cached', from, '2');
  const store = (await status(emp)).emperor.stores?.[0];
  assert.equal(store?.connected, true);
  assert.equal(store.from_cache, false);
});

void test('a compaction past the watched revision is recovered by a full read', async (t) => {
  const prefix = newPrefix();
  await etcd.put(`${prefix}/vassals/kept`, sleeper(1));
  await etcd.put(`${prefix}/vassals/dropped`, sleeper(1));
  const relay = await startRelay(etcd.port);
  t.after(() => relay.close());
  const emp = await fleetEmperor(t, `etcd://127.0.0.1:${relay.port}${prefix}`);
  const kept = await spawned(emp, 'kept', 0, '1');
  const dropped = await spawned(emp, 'dropped', 0, '1');

  const from = emp.lines.length;
  await relay.cut();
  await emp.waitLine((l) => l.event === 'etcd-unreachable', 'etcd-unreachable', from);
  // Behind the emperor's back: a change, a delete, and a compaction of the history between.
  await etcd.put(`${prefix}/vassals/kept`, sleeper(2));
  await etcd.del(`${prefix}/vassals/dropped`);
  await etcd.put(`${prefix}/vassals/fresh`, sleeper(1));
  await etcd.ctl('compact', String(await etcd.revision()));
  await relay.restore();

  await emp.waitLine((l) => l.event === 'etcd-compacted', 'etcd-compacted', from);
  await spawned(emp, 'kept', from, '2');
  await spawned(emp, 'fresh', from, '1');
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'dropped', 'dropped removed', from);
  await waitFor(() => !alive(dropped) && !alive(kept), { what: 'the old processes gone' });
});

void test('nodes places a vassal: it runs on the emperors whose node name matches, and stops where it no longer does', async (t) => {
  const prefix = newPrefix();
  const key = `${prefix}/vassals/placed`;
  const [a, b] = await Promise.all([
    fleetEmperor(t, etcd.url(prefix), { node: 'web-1' }),
    fleetEmperor(t, etcd.url(prefix), { node: 'db-1' }),
  ]);
  let fromA = a.lines.length;
  let fromB = b.lines.length;
  await etcd.put(key, sleeper(1, 'nodes = web-*\n'));
  const onA = await spawned(a, 'placed', fromA, '1');
  await b.waitLine(
    (l) => l.event === 'not-placed' && l.vassal === 'placed',
    'placed not placed on db-1',
    fromB,
  );
  assert.equal(b.lines.filter(spawnOf('placed')).length, 0, 'db-1 does not run it');

  fromA = a.lines.length;
  fromB = b.lines.length;
  await etcd.put(key, sleeper(2, 'nodes = db-?\n'));
  await spawned(b, 'placed', fromB, '2');
  await a.waitLine((l) => l.event === 'removed' && l.vassal === 'placed', 'placed stopped on web-1', fromA);
  await waitFor(() => !alive(onA), { what: `web-1's instance ${onA} gone` });
  assert.equal(
    (await status(a)).vassals.some((v) => v.name === 'placed'),
    false,
  );

  fromA = a.lines.length;
  await etcd.put(key, sleeper(3, 'nodes = web-1, db-1\n'));
  await spawned(a, 'placed', fromA, '3');
});

interface ClusterJson {
  vassals: { node: string; name: string; state: string; generation: number | null; error: string | null }[];
}

async function cluster(url: string): Promise<ClusterJson> {
  const r = await runCli(['status', '--cluster', '--etcd', url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ClusterJson;
}

void test('status --cluster shows every emperor, errors included; the entries of a killed emperor expire with its lease', async (t) => {
  const prefix = newPrefix();
  const url = etcd.url(prefix);
  const [a, b] = await Promise.all([
    fleetEmperor(t, url, { node: 'n-a' }),
    fleetEmperor(t, url, { node: 'n-b' }),
  ]);
  await etcd.put(`${prefix}/vassals/everywhere`, sleeper(1));
  await Promise.all([spawned(a, 'everywhere', 0, '1'), spawned(b, 'everywhere', 0, '1')]);
  await etcd.put(`${prefix}/vassals/broken`, '[vassal]\nexec = /bin/sleep 1000\nprocesses = many\n');
  const seen = await waitFor(
    async () => {
      const c = await cluster(url);
      const running = c.vassals.filter((v) => v.name === 'everywhere' && v.state === 'running');
      const broken = c.vassals.filter((v) => v.name === 'broken' && v.error !== null);
      return running.length === 2 && broken.length === 2 && c;
    },
    { what: 'both nodes in status --cluster, with the error of broken' },
  );
  assert.deepEqual(
    seen.vassals.filter((v) => v.name === 'everywhere').map((v) => v.node),
    ['n-a', 'n-b'],
  );
  assert.match(
    seen.vassals.find((v) => v.name === 'broken')?.error ?? '',
    /vassals\/broken:3: error: invalid `processes`/,
  );
  const table = await runCli(['status', '--cluster', '--etcd', url]);
  assert.match(table.stdout, /^NODE\s+NAME\s+STATE/m);
  assert.match(table.stdout, /^n-b\s+everywhere\s+running\s+1/m);

  b.child.kill('SIGKILL');
  await b.exited;
  // The lease (10 s) is no longer kept alive: etcd drops every entry of n-b by itself.
  await waitFor(
    async () => {
      const c = await cluster(url);
      return c.vassals.every((v) => v.node === 'n-a') && c.vassals.length === 2;
    },
    { what: "n-b's entries to expire", timeout: 40_000, interval: 500 },
  );
});

void test('fleet put writes only files that are valid as the emperors will read them; ls lists, rm stops', async (t) => {
  const prefix = newPrefix();
  const url = etcd.url(prefix);
  const emp = await fleetEmperor(t, url);
  const dir = mkdtempSync('/tmp/emp-');
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'good.ini'), sleeper('put'));
  writeFileSync(join(dir, 'bad.ini'), `${sleeper(1)}processes = many\n`);
  const refused = await runCli(['fleet', 'put', join(dir, 'good.ini'), join(dir, 'bad.ini'), '--etcd', url]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /bad\.ini \(as etcd:\/\/.*\/vassals\/bad\):5: error: invalid `processes`/);
  assert.match(refused.stderr, /nothing written/);
  assert.equal(await etcd.ctl('get', '--prefix', `${prefix}/vassals/`), '', 'not even the good file');

  const from = emp.lines.length;
  const put = await runCli(['fleet', 'put', join(dir, 'good.ini'), '--etcd', url]);
  assert.equal(put.code, 0, put.stderr);
  const pid = await spawned(emp, 'good', from, 'put');
  const ls = await runCli(['fleet', 'ls', '--json', '--etcd', url]);
  assert.deepEqual(
    (JSON.parse(ls.stdout) as { vassals: { name: string }[] }).vassals.map((v) => v.name),
    ['good'],
  );
  const rm = await runCli(['fleet', 'rm', 'good', '--etcd', url]);
  assert.equal(rm.code, 0, rm.stderr);
  await waitFor(() => !alive(pid), { what: `good's process ${pid} gone` });
  const again = await runCli(['fleet', 'rm', 'good', '--etcd', url]);
  assert.equal(again.code, 1);
});
