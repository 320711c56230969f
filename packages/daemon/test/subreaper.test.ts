// Containment without cgroups (issue #12): as a child subreaper, the emperor receives the
// orphans of its instances (a setsid'd double-fork daemon here) and attributes them to their
// vassal and instance by the environment they were started with.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnProcess } from '@emperor/native';
import { tempDir } from '@emperor/test-support';
import { readStat } from '../src/os/process-tree.js';
import { stopCgroup } from '../src/os/containment/cgroup-tree.js';
import { setUpContainment } from '../src/os/containment/containment.js';
import {
  isChildSubreaper,
  listOrphans,
  reapOrphans,
  setChildSubreaper,
} from '../src/os/containment/subreaper.js';
import { waitFor } from './fixtures/os-helpers.js';

const DAEMONIZE = fileURLToPath(new URL('../../test/fixtures/daemonize.py', import.meta.url));

void test('a setsid double-fork escapee is re-parented to the subreaper, attributed, killed and reaped', async (t) => {
  const work = tempDir(t);
  setChildSubreaper(true);
  t.after(() => {
    setChildSubreaper(false);
  });
  const child = spawnProcess({
    file: '/bin/sh',
    argv: ['sh', '-c', `python3 ${DAEMONIZE} ${work}/daemon.pid; exec sleep 9300`],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      EMPEROR_VASSAL: 'shop',
      EMPEROR_GENERATION: '3',
      EMPEROR_INSTANCE: '1',
    },
    fds: [-1, -1, -1],
  });
  const spawned = new Set([child.pid]);
  t.after(() => {
    process.kill(child.pid, 'SIGKILL');
  });
  const daemon = await waitFor(
    () => {
      try {
        return Number(readFileSync(`${work}/daemon.pid`, 'utf8'));
      } catch {
        return undefined;
      }
    },
    { what: 'the daemon to write its pid' },
  );
  t.after(() => {
    try {
      process.kill(daemon, 'SIGKILL');
    } catch {
      // Gone, as it should be.
    }
  });
  const stat = readStat(daemon);
  assert.equal(stat?.ppid, process.pid, 'the orphan is ours, not init');
  assert.notEqual(stat.sid, readStat(child.pid)?.sid, 'it is in a session of its own');
  assert.notEqual(stat.pgid, child.pid, 'it left the instance process group');

  const [orphan, ...rest] = listOrphans(spawned).filter((o) => o.pid === daemon);
  assert.deepEqual(rest, []);
  assert.deepEqual(
    {
      vassal: orphan?.vassal,
      generation: orphan?.generation,
      instance: orphan?.instance,
      exited: orphan?.exited,
    },
    { vassal: 'shop', generation: 3, instance: 1, exited: false },
  );
  assert.ok(
    listOrphans(spawned).every((o) => o.pid !== child.pid),
    'an instance the emperor spawned is not an orphan',
  );

  process.kill(daemon, 'SIGKILL');
  // As a zombie it is still listed (our child now), until reaped: then it is gone for good.
  const zombie = await waitFor(() => listOrphans(spawned).find((o) => o.pid === daemon && o.exited), {
    what: 'the killed orphan to become our zombie',
  });
  assert.deepEqual(reapOrphans([zombie]), [daemon]);
  assert.equal(readStat(daemon), undefined);
  assert.equal(readStat(child.pid)?.state === 'Z', false, 'the spawned instance was not reaped by mistake');
});

void test('containment is a cgroup tree where one can be had, the subreaper when forced', (t) => {
  const name = `emperor-test-${process.pid}`;
  const chosen = setUpContainment({ name });
  t.after(async () => {
    if (chosen.mode === 'cgroup') await stopCgroup(chosen.tree, chosen.tree.dir);
  });
  // This host (root, a writable cgroup2 mount) can have cgroups; CI is the same host type.
  assert.equal(chosen.mode, 'cgroup', JSON.stringify(chosen));
  assert.equal(isChildSubreaper(), false, 'no subreaper in cgroup mode');
  const forced = setUpContainment({ name, force: 'subreaper' });
  t.after(() => {
    setChildSubreaper(false);
  });
  assert.deepEqual(forced, { mode: 'subreaper', reason: 'forced' });
  assert.equal(isChildSubreaper(), true);
});
