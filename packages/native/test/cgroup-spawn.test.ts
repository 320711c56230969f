// Spawning into a cgroup (issue #12): the program and everything it forks start inside the
// target cgroup, by either method, and a refused move fails the spawn instead of running the
// program outside. Needs a writable cgroup2 hierarchy (root here and in CI).
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import {
  isChildSubreaper,
  setChildSubreaper,
  spawnProcess,
  type CgroupMethod,
  type Exit,
  type SpawnError,
} from '../src/index.js';
import { OUT, collect, fixture, ownCgroupDir, tempDir } from './support.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run_ = promisify(execFile);

const parent = ownCgroupDir();
const skip = parent === undefined ? 'no cgroup2 hierarchy' : false;

/** A fresh cgroup below ours, removed after the test: its directory and an open fd of it. */
function cgroup(t: TestContext): { dir: string; path: string; fd: number } {
  const name = `emperor-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const dir = `${parent as string}/${name}`;
  mkdirSync(dir);
  const fd = openSync(dir, 'r');
  t.after(() => {
    closeSync(fd);
    rmdirSync(dir);
  });
  const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  return { dir, path: `${own === '/' ? '' : own}/${name}`, fd };
}

/** Runs `script` with /bin/sh in the cgroup of `cgroupFd`, stdout and stderr collected. */
function run(script: string, cgroupFd: number, method: CgroupMethod): Promise<{ out: string; exit: Exit }> {
  return collect({
    file: '/bin/sh',
    argv: ['sh', '-c', script],
    env: { PATH: '/usr/bin:/bin' },
    fds: [-1, OUT, OUT],
    cgroup: { fd: cgroupFd, method },
  });
}

for (const method of ['clone3', 'procs'] as const) {
  void test(
    `${method}: the program and its children run in the cgroup from their first instruction`,
    { skip },
    async (t) => {
      const cg = cgroup(t);
      // The shell reads its own cgroup (builtins only) before anything else; its child reads its own.
      const { out, exit } = await run(
        'while read -r l; do case $l in 0::*) echo "$l";; esac; done < /proc/self/cgroup; grep ^0:: /proc/self/cgroup',
        cg.fd,
        method,
      );
      assert.deepEqual(exit, { code: 0, signal: null });
      const lines = out.trim().split('\n');
      assert.deepEqual(lines, [`0::${cg.path}`, `0::${cg.path}`]);
      // Nothing is left in it once the program has exited.
      assert.match(readFileSync(`${cg.dir}/cgroup.events`, 'utf8'), /^populated 0$/m);
    },
  );

  void test(`${method}: a cgroup the child cannot enter fails the spawn; nothing runs outside`, (t) => {
    const notCgroup = openSync(tempDir(t), 'r');
    t.after(() => {
      closeSync(notCgroup);
    });
    const marker = `${tempDir(t)}/ran`;
    assert.throws(
      () =>
        spawnProcess({
          file: '/bin/sh',
          argv: ['sh', '-c', `touch ${marker}`],
          env: {},
          fds: [],
          cgroup: { fd: notCgroup, method },
        }),
      (error: SpawnError) => {
        assert.match(error.syscall, method === 'clone3' ? /^(clone3|cgroup)$/ : /^cgroup$/);
        assert.match(error.message, /^cannot spawn \/bin\/sh/);
        return true;
      },
    );
    assert.throws(() => readFileSync(marker), /ENOENT/);
  });
}

void test(
  'where clone3 answers ENOSYS (Docker seccomp), the child moves itself: every spawn still lands in the cgroup',
  { skip: skip || (process.arch !== 'x64' && 'the seccomp fixture filters x86-64 only') },
  async (t) => {
    const cg = cgroup(t);
    const index = new URL('../src/index.js', import.meta.url).href;
    // Two spawns: the first finds clone3 missing and falls back, the second goes straight there.
    const script = `
      import { openSync, readFileSync } from 'node:fs';
      const { spawnProcess } = await import(${JSON.stringify(index)});
      const fd = openSync(${JSON.stringify(cg.dir)}, 'r');
      for (let i = 0; i < 2; i++) {
        const child = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '60'], env: {}, fds: [], cgroup: { fd } });
        process.stdout.write(/^0::.*$/m.exec(readFileSync('/proc/' + child.pid + '/cgroup', 'utf8'))[0] + '\\n');
        process.kill(child.pid, 'SIGKILL');
      }`;
    const { stdout } = await run_('python3', [
      fixture('without-clone3.py'),
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
    assert.deepEqual(stdout.trim().split('\n'), [`0::${cg.path}`, `0::${cg.path}`]);
  },
);

void test('the child-subreaper flag can be set and read back', () => {
  assert.equal(isChildSubreaper(), false);
  setChildSubreaper(true);
  assert.equal(isChildSubreaper(), true);
  setChildSubreaper(false);
  assert.equal(isChildSubreaper(), false);
});
