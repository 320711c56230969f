// Containment by cgroup (issue #12): finding the emperor's cgroup on the hosts we know, and,
// with real processes in real cgroups, that escapees (setsid, a double-fork daemon, nohup) are
// spawned inside, all killed by one kill, seen gone through the inotify watch, and removed.
import assert from 'node:assert/strict';
import { chownSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { closeRawFd, spawnProcess, type ChildProcessHandle } from '@emperor/native';
import {
  cgroupPids,
  isPopulated,
  killCgroup,
  removeCgroup,
  waitEmpty,
} from '../src/os/containment/cgroup.js';
import {
  locate,
  locateOwnCgroup,
  parseMountinfo,
  parseProcCgroup,
} from '../src/os/containment/cgroup-location.js';
import {
  instanceOfPath,
  listTree,
  openCgroupTree,
  prepareInstanceCgroup,
  stopCgroup,
  sweepTree,
  usageOf,
  type CgroupTree,
} from '../src/os/containment/cgroup-tree.js';
import { readStat } from '../src/os/process-tree.js';
import { asUserReading, waitFor } from './fixtures/os-helpers.js';
import { tempDir } from '@emperor/test-support';

const run = promisify(execFile);

const HYBRID = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const UNIFIED = `24 30 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
// A container without a cgroup namespace: the host's subtree of the container, bind-mounted.
const CONTAINER = `700 690 0:21 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
701 690 0:22 /other /mnt/cg\\040x rw - cgroup2 cgroup rw
`;

void describe('locating the cgroup', () => {
  void it('reads the cgroup2 line of /proc/self/cgroup, ignoring v1 lines', () => {
    assert.equal(
      parseProcCgroup('4:memory:/x\n0::/system.slice/emperor.service\n'),
      '/system.slice/emperor.service',
    );
    assert.equal(parseProcCgroup('4:memory:/x\n1:cpu:/\n'), undefined);
  });

  void it('finds the hybrid mount, the unified one, and refuses what cannot reach our cgroup', () => {
    assert.deepEqual(locate(parseMountinfo(HYBRID), '/'), {
      ok: true,
      mountPoint: '/sys/fs/cgroup/unified',
      path: '/',
      dir: '/sys/fs/cgroup/unified',
    });
    const unified = locate(parseMountinfo(UNIFIED), '/system.slice/emperor.service');
    assert.equal(unified.ok && unified.dir, '/sys/fs/cgroup/system.slice/emperor.service');
    const container = parseMountinfo(CONTAINER);
    assert.equal(container[1]?.mountPoint, '/mnt/cg x', 'octal escapes are decoded');
    assert.deepEqual(locate(container, '/docker/abc'), {
      ok: false,
      reason: 'the cgroup2 mount /sys/fs/cgroup is read-only',
    });
    const other = locate(container, '/other/app');
    assert.equal(other.ok && other.dir, '/mnt/cg x/app');
    assert.equal(locate(container, '/elsewhere').ok, false);
    assert.match(
      (locate(parseMountinfo(HYBRID), undefined) as { reason: string }).reason,
      /only in cgroup v1/,
    );
    assert.match((locate([], '/') as { reason: string }).reason, /no cgroup2 file system/);
  });

  void it('refuses a tree name that is not a plain directory name', () => {
    for (const name of ['', '..', 'a/b', '.hidden']) {
      assert.throws(() => openCgroupTree({ name }), { code: 'EMP_BAD_CGROUP_NAME' });
    }
  });

  void it('finds this process on this machine', () => {
    const own = locateOwnCgroup();
    assert.ok(own.ok, JSON.stringify(own));
    assert.ok(existsSync(join(own.dir, 'cgroup.procs')));
  });
});

const own = locateOwnCgroup();
const skip = own.ok ? false : `no usable cgroup2 hierarchy: ${own.reason}`;
const DAEMONIZE = fileURLToPath(new URL('../../test/fixtures/daemonize.py', import.meta.url));

/** A tree of its own for this test (several test processes run in parallel), swept afterwards. */
function tree(t: TestContext, killMethod?: 'kill' | 'freeze'): CgroupTree {
  const name = `emperor-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const opened = openCgroupTree({ name, ...(killMethod ? { killMethod } : {}) });
  assert.ok(opened.ok, JSON.stringify(opened));
  t.after(async () => {
    await sweepTree(opened.tree, AbortSignal.timeout(20_000));
    await stopCgroup(opened.tree, opened.tree.dir);
  });
  return opened.tree;
}

/**
 * A shell instance that starts every kind of escapee, writes their pids, then execs its app:
 * `setsid sleep`, a double-fork Python daemon and `nohup sleep &`.
 */
function spawnEscapees(
  t: TestContext,
  cgroupTree: CgroupTree,
): { child: ChildProcessHandle; dir: string; pids: () => number[] | undefined } {
  const work = tempDir(t);
  const cg = prepareInstanceCgroup(cgroupTree, { vassal: 'app', generation: 1, index: 0 });
  let child;
  try {
    child = spawnProcess({
      file: '/bin/sh',
      argv: [
        'sh',
        '-c',
        `setsid sleep 9301 & echo $! > ${work}/setsid.tmp && mv ${work}/setsid.tmp ${work}/setsid.pid
         nohup sleep 9302 >/dev/null 2>&1 & echo $! > ${work}/nohup.tmp && mv ${work}/nohup.tmp ${work}/nohup.pid
         python3 ${DAEMONIZE} ${work}/daemon.pid
         exec sleep 9300`,
      ],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      fds: [-1, -1, -1],
      cgroup: { fd: cg.fd },
    });
  } finally {
    closeRawFd(cg.fd);
  }
  const pids = (): number[] | undefined => {
    try {
      return ['setsid', 'nohup', 'daemon'].map((f) => Number(readFileSync(`${work}/${f}.pid`, 'utf8')));
    } catch {
      return undefined;
    }
  };
  return { child, dir: cg.dir, pids };
}

function alive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

for (const method of ['kill', 'freeze'] as const) {
  void test(
    `${method}: setsid, double-fork and nohup escapees are in the cgroup, all killed, seen gone, removed`,
    { skip },
    async (t) => {
      const cgroupTree = tree(t, method);
      const { child, dir, pids } = spawnEscapees(t, cgroupTree);
      const escapees = await waitFor(pids, { what: 'the escapees to write their pids' });
      const everyone = [child.pid, ...escapees];
      // Out of the instance's process group, yet inside its cgroup.
      const daemon = readStat(escapees[2] as number);
      assert.notEqual(daemon?.pgid, child.pid, 'the daemon left the process group');
      assert.deepEqual(
        cgroupPids(dir).toSorted(),
        everyone.toSorted(),
        'the cgroup holds the instance and its escapees, nothing else',
      );
      const usage = usageOf(cgroupTree, join(cgroupTree.dir, 'app.vassal'));
      // memory.current only where the memory controller reaches the tree (not on a hybrid host).
      assert.equal(usage?.memoryBytes !== undefined, cgroupTree.controllers.includes('memory'));
      assert.ok(
        usage !== undefined && usage.cpuSeconds > 0,
        `cpu.stat counts the tree: ${JSON.stringify(usage)}`,
      );

      const exited = new Promise((resolve) => {
        child.onExit(resolve);
      });
      // The watch is set before the kill and must be what sees the end: waitEmpty never polls.
      const empty = waitEmpty(dir, AbortSignal.timeout(20_000));
      await killCgroup(dir, method);
      await empty;
      assert.equal(isPopulated(dir), false);
      assert.deepEqual(everyone.filter(alive), [], 'no process of the instance is left');
      assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' });

      await stopCgroup(cgroupTree, join(cgroupTree.dir, 'app.vassal'));
      assert.equal(existsSync(dir), false, 'the cgroup is removed');
    },
  );
}

for (const method of ['kill', 'freeze'] as const) {
  void test(
    `${method}: a process forking setsid'd children in a loop is stopped with every child`,
    { skip },
    async (t) => {
      const cgroupTree = tree(t, method);
      const cg = prepareInstanceCgroup(cgroupTree, { vassal: 'forker', generation: 1, index: 0 });
      try {
        spawnProcess({
          file: '/bin/sh',
          argv: ['sh', '-c', 'i=0; while [ $i -lt 400 ]; do setsid sleep 9304 & i=$((i+1)); done; wait'],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          fds: [-1, -1, -1],
          cgroup: { fd: cg.fd },
        });
      } finally {
        closeRawFd(cg.fd);
      }
      // Killed while it is still forking: a kill by pid list would miss the children in flight.
      await waitFor(() => cgroupPids(cg.dir).length >= 20, { what: 'the loop to have forked' });
      const empty = waitEmpty(cg.dir, AbortSignal.timeout(20_000));
      await killCgroup(cg.dir, method);
      await empty;
      assert.equal(isPopulated(cg.dir), false);
      assert.equal(removeCgroup(cg.dir), true, 'the empty cgroup is removed');
    },
  );
}

void test(
  "the next emperor's sweep kills a killed emperor's leftovers found in the tree",
  { skip },
  async (t) => {
    const first = tree(t);
    const { child, pids } = spawnEscapees(t, first);
    const escapees = await waitFor(pids, { what: 'the escapees to write their pids' });
    // A new emperor with the same runtime directory opens the same tree and sweeps it.
    const name = first.dir.slice(first.dir.lastIndexOf('/') + 1);
    const next = openCgroupTree({ name });
    assert.ok(next.ok);
    const found = await sweepTree(next.tree, AbortSignal.timeout(20_000));
    assert.deepEqual(
      found.map((f) => [f.vassal, f.pids.toSorted()]),
      [['app', [child.pid, ...escapees].toSorted()]],
    );
    assert.deepEqual([child.pid, ...escapees].filter(alive), []);
    assert.deepEqual(listTree(next.tree), [], 'the vassal cgroups are removed');
  },
);

void test(
  'the emperor can move itself, every thread, into a leaf (to enable controllers in its cgroup)',
  { skip },
  async (t) => {
    const cgroupTree = tree(t);
    const leaf = join(cgroupTree.dir, 'supervisor');
    const treeModule = new URL('../src/os/containment/cgroup-tree.js', import.meta.url).href;
    // A Node process (several threads: libuv's pool, V8's workers) stands for the emperor.
    const script = `
    import { readdirSync, readFileSync } from 'node:fs';
    const { moveSelfTo } = await import(${JSON.stringify(treeModule)});
    moveSelfTo(${JSON.stringify(leaf)});
    const tasks = readdirSync('/proc/self/task');
    const groups = new Set(tasks.map((t) => /^0::(.*)$/m.exec(readFileSync('/proc/self/task/' + t + '/cgroup', 'utf8'))[1]));
    process.stdout.write(JSON.stringify({ threads: tasks.length, groups: [...groups] }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    const seen = JSON.parse(stdout) as { threads: number; groups: string[] };
    assert.ok(seen.threads > 1, `a multi-threaded process: ${stdout}`);
    assert.equal(seen.groups.length, 1, `every thread moved: ${stdout}`);
    assert.ok(leaf.endsWith(seen.groups[0] as string), `into ${leaf}: ${stdout}`);
  },
);

void test(
  'without the right to move processes into it, the tree is refused with the reason (subreaper mode)',
  { skip: skip || (process.getuid?.() !== 0 && 'needs root to make a half-delegated cgroup') },
  async (t) => {
    // A cgroup handed to `nobody` without the ancestor's cgroup.procs: it can create cgroups below,
    // but the kernel refuses to move a process there; only the probe spawn can tell.
    const cgroupTree = tree(t);
    const name = cgroupTree.dir.slice(cgroupTree.dir.lastIndexOf('/') + 1);
    for (const file of ['', '/cgroup.procs', '/cgroup.subtree_control'])
      chownSync(cgroupTree.dir + file, 65534, 65534);
    const treeModule = new URL('../src/os/containment/cgroup-tree.js', import.meta.url).href;
    const script = `
    const { openCgroupTree } = await import(${JSON.stringify(treeModule)});
    process.stdout.write(JSON.stringify(openCgroupTree({ name: ${JSON.stringify(name)} })));`;
    const [setpriv = 'setpriv', ...asNobody] = asUserReading(65534);
    const { stdout } = await run(setpriv, [
      ...asNobody,
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
    const result = JSON.parse(stdout) as { ok: boolean; reason?: string };
    assert.equal(result.ok, false, stdout);
    assert.match(result.reason ?? '', /^cannot spawn into the cgroup .*: (clone3|cgroup): E(ACCES|PERM)$/);
    assert.deepEqual(
      readdirSync(cgroupTree.dir, { withFileTypes: true }).filter((e) => e.isDirectory()),
      [],
      'the probe is gone',
    );
  },
);

void test('instanceOfPath names the instance of a process from its /proc/PID/cgroup path, and nothing else', () => {
  const tree: CgroupTree = {
    dir: '/sys/fs/cgroup/system.slice/emperor.service/emperor-abc',
    path: '/system.slice/emperor.service/emperor-abc',
    killMethod: 'kill',
    controllers: [],
  };
  assert.deepEqual(instanceOfPath(tree, '/system.slice/emperor.service/emperor-abc/shop.vassal/3.1'), {
    vassal: 'shop',
    generation: 3,
    index: 1,
  });
  // A vassal name with dots, as names may have.
  assert.deepEqual(instanceOfPath(tree, '/system.slice/emperor.service/emperor-abc/a.b.vassal/1.0'), {
    vassal: 'a.b',
    generation: 1,
    index: 0,
  });
  for (const other of [
    '/system.slice/emperor.service/emperor-abcd/shop.vassal/3.1', // another emperor's tree
    '/system.slice/emperor.service/emperor-abc/shop.vassal', // the vassal level holds no process
    '/system.slice/emperor.service/emperor-abc/probe',
    '/system.slice/emperor.service/emperor-abc/shop.vassal/3.1/x',
    '/user.slice',
  ])
    assert.equal(instanceOfPath(tree, other), undefined, other);
});
