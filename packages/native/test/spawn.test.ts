import assert from 'node:assert/strict';
import { spawn as nodeSpawn } from 'node:child_process';
import { chmodSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { bindTcp, spawnProcess, type Exit, type SpawnRequest } from '../src/index.js';
import { OUT, collect, tempDir, waitFor } from './support.js';

const devNull = openSync('/dev/null', 'r');

/** Runs `script` with /bin/sh, stdout and stderr collected. */
function run(
  script: string,
  request: Partial<SpawnRequest> = {},
  extraFds: number[] = [],
): Promise<{ out: string; exit: Exit; pid: number }> {
  return collect({
    file: '/bin/sh',
    argv: ['sh', '-c', script],
    env: { PATH: '/usr/bin:/bin' },
    ...request,
    fds: [devNull, OUT, OUT, ...extraFds],
  });
}

void test('the child gets argv, env, cwd, umask and its own pid in the named variables', async () => {
  const { out, exit, pid } = await run('echo "$0|$A|$(pwd)|$(umask)|$LISTEN_PID|$WATCHDOG_PID|$$"; exit 7', {
    env: { PATH: '/usr/bin:/bin', A: 'b c' },
    cwd: '/tmp',
    umask: 0o027,
    pidVars: ['LISTEN_PID', 'WATCHDOG_PID'],
  });
  assert.deepEqual(exit, { code: 7, signal: null });
  assert.equal(out, `sh|b c|/tmp|0027|${pid}|${pid}|${pid}\n`);
});

void test('the child leads its own process group in our session, with default signals and no leaked fds', async () => {
  const sock = bindTcp({ host: '127.0.0.1', port: 0, backlog: 4 });
  try {
    const ids = await run('cut -d" " -f5,6 /proc/$$/stat');
    const ourSid = readFileSync('/proc/self/stat', 'utf8').split(' ')[5];
    assert.equal(ids.out.trim(), `${ids.pid} ${ourSid}`, 'pgid is the pid, the session ours');
    // exec: a shell waiting for a child blocks signals itself, so let the program read its own.
    const [blocked, ignored] = (await run('exec grep -E "^Sig(Blk|Ign)" /proc/self/status')).out.split('\n');
    assert.match(blocked ?? '', /^SigBlk:\s+0+$/);
    // Node ignores SIGPIPE; an exec'd program must not inherit that.
    assert.match(ignored ?? '', /^SigIgn:\s+0+$/);
    // 0-3 are what was passed, 4 is ls's own listing; an fd the test runner inherited would show.
    const fds = (await run('exec ls /proc/self/fd', {}, [sock.fd])).out.trim().split('\n');
    assert.deepEqual(fds, ['0', '1', '2', '3', '4']);
  } finally {
    sock.close();
  }
});

void test('a signal is reported by name, a missing program and a bad chdir throw with the step', async () => {
  const sleeper = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '30'], env: {}, fds: [devNull] });
  process.kill(-sleeper.pid, 'SIGTERM');
  const exit = await new Promise<Exit>((resolve) => {
    sleeper.onExit(resolve);
  });
  assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });
  assert.throws(() => spawnProcess({ file: '/nonexistent/app', argv: ['app'], env: {}, fds: [devNull] }), {
    code: 'ENOENT',
    syscall: 'execve',
    message: 'cannot run /nonexistent/app: no such file or directory (ENOENT)',
  });
  assert.throws(
    () => spawnProcess({ file: '/bin/true', argv: ['true'], env: {}, fds: [devNull], cwd: '/nonexistent' }),
    {
      code: 'ENOENT',
      syscall: 'chdir',
    },
  );
});

void test('the child dies with the process that spawned it (parent-death signal)', async () => {
  // A Node process that spawns `sleep` through the addon and prints its pid; then we SIGKILL it.
  const spawnUrl = new URL('../src/index.js', import.meta.url).href;
  const code = `
    const { spawnProcess } = await import(${JSON.stringify(spawnUrl)});
    const c = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '60'], env: {}, fds: [-1, -1, -1], pdeathsig: true });
    console.log(c.pid);
    setInterval(() => {}, 1000);`;
  const parent = nodeSpawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pid = await new Promise<number>((resolve) =>
    parent.stdout.once('data', (d: Buffer) => {
      resolve(Number(d.toString()));
    }),
  );
  assert.ok(pid > 0);
  assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^sleep\0/);
  parent.kill('SIGKILL');
  await waitFor(
    () => {
      try {
        // Gone, or a zombie waiting for init to reap it.
        return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return true;
      }
    },
    { what: `sleep ${pid} to die with its parent` },
  );
});

void test(
  'as root: uid, gid and the supplementary groups of a named user',
  { skip: process.getuid?.() !== 0 },
  async () => {
    const { out } = await run('id -u; id -g; id -G', {
      uid: 65534,
      gid: 65534,
      groups: { init: 'nobody', gid: 65534 },
    });
    const [uid, gid, groups] = out.trim().split('\n');
    assert.deepEqual([uid, gid], ['65534', '65534']);
    assert.ok(!(groups ?? '').split(' ').includes('0'), `no group of root's kept: ${groups}`);
    const cleared = await run('id -G', { gid: 65534, groups: 'clear' });
    assert.equal(cleared.out.trim(), '65534');
    // Ids above 2^31 are ids, not "unchanged".
    const high = await run('id -u; id -g', { uid: 3_000_000_000, gid: 3_000_000_001, groups: 'clear' });
    assert.equal(high.out, '3000000000\n3000000001\n');
  },
);

void test('fds are shuffled into place even when a source is another target', async () => {
  // The pipe's write end is given as fd 1 and 3: a naive dup2 loop would clobber a source.
  const { out } = await collect({
    file: '/bin/sh',
    argv: ['sh', '-c', 'echo one; echo three >&3'],
    env: { PATH: '/usr/bin:/bin' },
    fds: [devNull, OUT, -1, OUT],
  });
  assert.equal(out, 'one\nthree\n');
});

void test('a script without "#!" is run by /bin/sh, as execvp does', async (t) => {
  const dir = tempDir(t);
  const script = `${dir}/plain`;
  writeFileSync(script, 'echo "from sh: $1"\n');
  chmodSync(script, 0o755);
  const { out, exit } = await collect({ file: script, argv: ['plain', 'x'], env: {}, fds: [devNull, OUT] });
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(out, 'from sh: x\n');
});
