// A three-member etcd cluster (docs/fleet.md): the member an emperor's watch is on is killed while
// a vassal serves a steady load; nothing stops, and the emperors fail over to the other members.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES,
  controlSocket,
  freePort,
  getJson,
  node,
  runCli,
  startEmperor,
  startLoad,
  waitFor,
  type EmperorProcess,
  type LogLine,
} from './support.js';
import { remotePortsOf, startEtcd, type Etcd } from './etcd-support.js';

let etcd: Etcd;
before(async () => {
  etcd = await startEtcd({ size: 3 });
});
after(async () => {
  await etcd.destroy();
});

async function fleetEmperor(
  t: Parameters<typeof startEmperor>[0],
  node: string,
  port: number,
): Promise<EmperorProcess> {
  const dir = mkdtempSync('/tmp/emp-');
  return startEmperor(t, {
    dir,
    // The one text in etcd serves on each host's own port (one machine stands in for two hosts).
    env: { APP_PORT: String(port) },
    args: ['--vassals', etcd.url('/c'), '--state-dir', join(dir, 'state'), '--node-name', node],
  });
}

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;

void test('one member of three killed (the one the watches are on) under load: nothing stops, and a later put reaches every emperor', async (t) => {
  await etcd.put(
    '/c/vassals/web',
    `[vassal]\nexec = ${node()} ${FIXTURES}/http-server.mjs\nenv = PORT=$(APP_PORT)\nstop-timeout = 5\n`,
  );
  const [portA, portB] = [await freePort(), await freePort()];
  const [a, b] = await Promise.all([fleetEmperor(t, 'n-a', portA), fleetEmperor(t, 'n-b', portB)]);
  const pids = await Promise.all(
    [a, b].map(async (e) => (await e.waitLine(spawnOf('web'), 'spawn of web')).pid as number),
  );
  await waitFor(
    async () => (await getJson(portA)).pid === pids[0] && (await getJson(portB)).pid === pids[1],
    {
      what: 'web answering on both nodes',
    },
  );

  // The client starts with the first endpoint of the URL: both watch streams are on member 1.
  const watched = etcd.members[0];
  assert.ok(watched);
  await waitFor(() => [a, b].every((e) => e.child.pid && remotePortsOf(e.child.pid).has(watched.port)), {
    what: `both emperors connected to ${watched.name} (${watched.endpoint})`,
  });

  const load = startLoad(t, () => Promise.all([getJson(portA), getJson(portB)]), 2);
  const from = [a.lines.length, b.lines.length];
  await waitFor(() => load.ok() >= 20, { what: 'requests before the kill' });
  t.diagnostic(`${watched.name} is ${(await etcd.leader()) === 0 ? '' : 'not '}the leader`);
  await watched.kill();
  const okAtKill = load.ok();
  // A put made by etcdctl waits for the two members left to elect a leader, if it was the leader.
  await waitFor(
    async () => {
      try {
        return (await etcd.leader()) > 0;
      } catch {
        return false;
      }
    },
    { what: 'a leader among the members left' },
  );

  await etcd.put('/c/vassals/later', '[vassal]\nexec = /bin/sleep 1000\nstop-timeout = 5\n');
  await Promise.all(
    [a, b].map((e, i) => e.waitLine(spawnOf('later'), `spawn of later on ${['n-a', 'n-b'][i]}`, from[i])),
  );
  await waitFor(() => load.ok() >= okAtKill + 50, { what: 'requests after the kill' });
  await load.stop();
  assert.deepEqual(load.failures, [], 'no request failed');

  for (const [i, e] of [a, b].entries()) {
    const since = e.lines.slice(from[i]);
    assert.deepEqual(
      since.filter(
        (l) => l.vassal === 'web' && ['spawn', 'stopped', 'removed', 'exit'].includes(String(l.event)),
      ),
      [],
      'web was neither stopped nor started again',
    );
    assert.deepEqual(
      since.filter((l) => l.event === 'etcd-unreachable'),
      [],
      'the store stayed reachable through the other members',
    );
    const r = await runCli(['status', '--json'], { control: controlSocket(e) });
    const s = JSON.parse(r.stdout) as {
      emperor: { stores: { connected: boolean }[] };
      vassals: { name: string; state: string; instances: { pid: number | null }[] }[];
    };
    assert.equal(s.emperor.stores[0]?.connected, true);
    assert.deepEqual(
      s.vassals.find((v) => v.name === 'web')?.instances.map((x) => x.pid),
      [pids[i]],
      'the same pid serves',
    );
    assert.ok(
      e.child.pid && !remotePortsOf(e.child.pid).has(watched.port),
      'the watch moved to another member',
    );
  }
});
