// replaceProcess: execve from Node, in a child Node, seen from outside: the same pid runs the new
// program, with the given arguments and environment and Node's stdio (which Node had marked
// close-on-exec); a failed exec throws with the errno's name and leaves Node running as it was.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const INDEX = fileURLToPath(new URL('../src/index.js', import.meta.url));

function runNode(script: string): {
  stdout: string;
  stderr: string;
  pid: number | undefined;
  status: number | null;
} {
  const env: NodeJS.ProcessEnv = { ...process.env, X: 'from-env' }; // not what the exec is given
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  return { stdout: r.stdout, stderr: r.stderr, pid: r.pid, status: r.status };
}

void test('the pid runs the new program, with its arguments, the environment given (only it) and stdio', () => {
  const r = runNode(
    `import { replaceProcess } from ${JSON.stringify(INDEX)};
     replaceProcess('/bin/sh', ['sh', '-c', 'echo "$$ $X [$HOME] $0" && echo err >&2', 'arg0'], { X: 'given' });`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${r.pid} given [] arg0\n`);
  assert.equal(r.stderr, 'err\n');
});

void test('a failed exec throws ENOENT and Node goes on, its stdio as it was (close-on-exec again)', () => {
  const r = runNode(
    `import { readFileSync } from 'node:fs';
     import { replaceProcess } from ${JSON.stringify(INDEX)};
     const flags = () => [0, 1, 2].map((fd) => /flags:\\s+(\\d+)/.exec(readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1]);
     const before = flags();
     let failed;
     try { replaceProcess('/no/such/program', ['x'], {}); } catch (e) { failed = e; }
     const after = flags(); // before console.log, which makes a pipe non-blocking
     console.log(failed.code, failed.syscall);
     console.log(String(before) === String(after) ? 'same flags' : 'flags changed: ' + before + ' / ' + after);
     console.log('still here');`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ENOENT execve\nsame flags\nstill here\n');
});
