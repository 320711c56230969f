import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAlive, processGroupMembers, readStartTime } from '../src/os/process-tree.js';
import { cleanupLeftovers, openStateFile, type GroupRecord } from '../src/os/state-file.js';
import { exited, Groups, tempDir, waitFor } from './fixtures/os-helpers.js';

const groups = new Groups();
let dir: string;
let removeDir: () => Promise<void>;
let n = 0;
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

before(async () => {
  ({ path: dir, remove: removeDir } = await tempDir('emp-state-'));
});
after(async () => {
  groups.killAll();
  await removeDir();
});

const nextPath = (): string => join(dir, `state-${++n}.json`);

/**
 * A process group started like an instance: own group, `EMPEROR_VASSAL` in its environment.
 * The shell waits on its stdin; `leaderExit()` closes it to leave the group without a leader.
 */
async function instance(script: string, vassal: string | undefined, members: number) {
  const env = { ...process.env };
  if (vassal === undefined) delete env.EMPEROR_VASSAL;
  else env.EMPEROR_VASSAL = vassal;
  const child = groups.spawn('sh', ['-c', `${script}\nread _`], { env, stdio: ['pipe', 'ignore', 'ignore'] });
  const startTime = readStartTime(child.pid);
  assert.ok(startTime !== undefined);
  await waitFor(() => processGroupMembers(child.pid).length === members, {
    what: `${members} members in group ${child.pid}`,
  });
  const leaderExit = async (): Promise<void> => {
    child.stdin?.end();
    await exited(child);
  };
  return { child, startTime, leaderExit };
}

function record(pgid: number, startTime: bigint, vassal = 'shop'): GroupRecord {
  return { pgid, startTime, vassal, instance: 0, generation: 1 };
}

async function groupGone(pgid: number): Promise<void> {
  await waitFor(() => processGroupMembers(pgid).length === 0, { what: `group ${pgid} empty` });
}

void describe('state file', () => {
  void it('coalesces many changes into few writes and round-trips the records', async () => {
    const path = nextPath();
    const file = openStateFile({ path, debounceMs: 20 });
    for (let i = 2; i < 502; i++) file.add(record(100000 + i, BigInt(i)));
    // 500 spawns did not write synchronously: the first write comes after the debounce.
    await assert.rejects(stat(path), { code: 'ENOENT' });
    await file.flush();
    const content = JSON.parse(await readFile(path, 'utf8')) as {
      version: number;
      bootId: string;
      emperor: { pid: number };
      groups: { pgid: number; startTime: string }[];
    };
    assert.equal(content.version, 1);
    assert.equal(content.bootId, bootId);
    assert.equal(content.emperor.pid, process.pid);
    assert.equal(content.groups.length, 500);
    assert.deepEqual(content.groups[0], {
      pgid: 100002,
      startTime: '2',
      vassal: 'shop',
      instance: 0,
      generation: 1,
    });

    for (let i = 2; i < 502; i++) file.remove(100000 + i);
    file.add(record(4242, 7n));
    await file.flush();
    const again = JSON.parse(await readFile(path, 'utf8')) as { groups: unknown[] };
    assert.deepEqual(again.groups, [
      { pgid: 4242, startTime: '7', vassal: 'shop', instance: 0, generation: 1 },
    ]);
    assert.deepEqual(file.records(), [record(4242, 7n)]);
    // Written through a temporary file and a rename: no temporary file is left behind.
    assert.deepEqual(
      (await readdir(dir)).filter((name) => name.endsWith('.tmp')),
      [],
    );
    await file.close();
    assert.ok((await readFile(path, 'utf8')).includes('4242'), 'a non-empty state stays on close');
  });

  void it('removes the file on close when no group is left', async () => {
    const path = nextPath();
    const file = openStateFile({ path });
    file.add(record(4343, 1n));
    await file.flush();
    file.remove(4343);
    await Promise.all([file.close(), file.close()]);
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });
});

void describe('cleanupLeftovers', () => {
  void it('kills groups whose leader is still the recorded process, grandchildren included', async () => {
    const path = nextPath();
    const a = await instance('sleep 100 & sleep 100 &', 'shop', 3);
    const file = openStateFile({ path });
    file.add(record(a.child.pid, a.startTime));
    await file.flush();

    const report = await cleanupLeftovers(path);
    const [killed, ...more] = report.killed;
    assert.ok(killed !== undefined && more.length === 0);
    assert.equal(killed.evidence, 'leader');
    assert.equal(killed.pids.length, 3);
    assert.deepEqual(report.stillAlive, []);
    await groupGone(a.child.pid);
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });

  void it('never kills a live process whose start time differs (a reused pid)', async () => {
    const path = nextPath();
    const b = await instance('sleep 100 &', 'shop', 2);
    const file = openStateFile({ path });
    file.add(record(b.child.pid, b.startTime - 1n));
    await file.flush();

    const report = await cleanupLeftovers(path);
    assert.deepEqual(report.killed, []);
    assert.equal(report.skipped[0]?.reason, 'pid reused');
    assert.equal(isAlive(b.child.pid, b.startTime), true);
    groups.killAll();
  });

  void it('with the leader gone, kills members that carry the vassal, leaves the others', async () => {
    const path = nextPath();
    // The shell exits; its background sleep keeps the group alive without a leader.
    const ours = await instance('sleep 100 &', 'shop', 2);
    const foreign = await instance('sleep 100 &', undefined, 2);
    await Promise.all([ours.leaderExit(), foreign.leaderExit()]);
    const file = openStateFile({ path });
    file.add(record(ours.child.pid, ours.startTime));
    file.add(record(foreign.child.pid, foreign.startTime));
    await file.flush();

    const report = await cleanupLeftovers(path);
    assert.deepEqual(
      report.killed.map((k) => [k.pgid, k.evidence]),
      [[ours.child.pid, 'environment']],
    );
    assert.deepEqual(
      report.skipped.map((s) => [s.pgid, s.reason]),
      [[foreign.child.pid, 'no evidence']],
    );
    await groupGone(ours.child.pid);
    assert.equal(processGroupMembers(foreign.child.pid).length, 1, 'the foreign orphan lives');
    groups.killAll();
  });

  void it('ignores a file from another boot and an unreadable file, removing both', async () => {
    const c = await instance('sleep 100 &', 'shop', 2);
    const path = nextPath();
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        bootId: 'another-boot',
        emperor: { pid: 999999, startTime: '1' },
        groups: [
          { pgid: c.child.pid, startTime: String(c.startTime), vassal: 'shop', instance: 0, generation: 1 },
        ],
      }),
    );
    assert.deepEqual(await cleanupLeftovers(path), { killed: [], skipped: [], stillAlive: [] });
    assert.equal(isAlive(c.child.pid, c.startTime), true);
    await assert.rejects(stat(path), { code: 'ENOENT' });

    const bad = nextPath();
    await writeFile(bad, '{"version": 1, "groups": [');
    assert.deepEqual(await cleanupLeftovers(bad), { killed: [], skipped: [], stillAlive: [] });
    await assert.rejects(stat(bad), { code: 'ENOENT' });
    assert.deepEqual(await cleanupLeftovers(join(dir, 'missing.json')), {
      killed: [],
      skipped: [],
      stillAlive: [],
    });
    groups.killAll();
  });

  void it('refuses to touch the groups of an emperor that still runs', async () => {
    const emperor = await instance('sleep 100 &', undefined, 2);
    const c = await instance('sleep 100 &', 'shop', 2);
    const path = nextPath();
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        bootId,
        emperor: { pid: emperor.child.pid, startTime: String(emperor.startTime) },
        groups: [
          { pgid: c.child.pid, startTime: String(c.startTime), vassal: 'shop', instance: 0, generation: 1 },
        ],
      }),
    );
    await assert.rejects(cleanupLeftovers(path), { code: 'EMP_STATE_FILE_IN_USE' });
    assert.equal(isAlive(c.child.pid, c.startTime), true);
    assert.ok((await stat(path)).isFile());
    groups.killAll();
  });

  void it('treats a killed emperor that is still a zombie as gone, and sweeps its groups', async () => {
    // `sleep 0.1` outlives nothing: its parent execs `sleep 100`, which never reaps it.
    const parent = groups.spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 100'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const zombie = await new Promise<number>((done) => {
      parent.stdout?.once('data', (d: Buffer) => {
        done(Number(d.toString().trim()));
      });
    });
    const zombieStart = readStartTime(zombie);
    assert.ok(zombieStart !== undefined);
    await waitFor(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '), {
      what: `pid ${zombie} a zombie`,
    });
    const c = await instance('sleep 100 &', 'shop', 2);
    const path = nextPath();
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        bootId,
        emperor: { pid: zombie, startTime: String(zombieStart) },
        groups: [
          { pgid: c.child.pid, startTime: String(c.startTime), vassal: 'shop', instance: 0, generation: 1 },
        ],
      }),
    );
    const report = await cleanupLeftovers(path);
    assert.equal(report.killed.length, 1);
    await groupGone(c.child.pid);
    groups.killAll();
  });
});
