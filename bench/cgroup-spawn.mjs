// What spawning into a cgroup costs (issue #12): the time the emperor's thread is blocked per
// spawn (clone to exec of the child) without a cgroup, with clone3 + CLONE_INTO_CGROUP, and with
// the child writing itself into cgroup.procs. Methods are interleaved round by round (in a random order) so that a
// change of machine load hits all three alike. Needs root and a writable cgroup2 mount.
// Usage: node bench/cgroup-spawn.mjs [ROUNDS=300] [CGROUP2_MOUNT]
import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { spawnProcess } from '@emperor/native';

const rounds = Number(process.argv[2] ?? 300);
const mount =
  process.argv[3] ??
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
if (!mount) throw new Error('no cgroup2 mount');
const dir = `${mount}/emperor-bench-${process.pid}`;
mkdirSync(dir);
const fd = openSync(dir, 'r');
const devNull = openSync('/dev/null', 'r+');
const methods = { none: undefined, clone3: { fd, method: 'clone3' }, procs: { fd, method: 'procs' } };
const times = { none: [], clone3: [], procs: [] };
// A new order each round: the first spawn of a round ran measurably slower or faster than the
// others (the previous round's children were still exec'ing), which a fixed order attributed to
// one method.
const shuffled = (list) =>
  list
    .map((x) => [Math.random(), x])
    .sort((a, b) => a[0] - b[0])
    .map(([, x]) => x);
// The same without the exec: a missing program fails at execve, after the move into the cgroup,
// so this times clone plus attach alone.
const attach = { none: [], clone3: [], procs: [] };
for (let i = 0; i < rounds; i++) {
  for (const [name, cgroup] of shuffled(Object.entries(methods))) {
    const start = process.hrtime.bigint();
    try {
      spawnProcess({ file: '/nonexistent', argv: ['x'], env: {}, fds: [], ...(cgroup ? { cgroup } : {}) });
    } catch (error) {
      if (error.syscall !== 'execve') throw error;
    }
    attach[name].push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}
const children = [];
for (let i = 0; i < rounds; i++) {
  for (const [name, cgroup] of shuffled(Object.entries(methods))) {
    const start = process.hrtime.bigint();
    const child = spawnProcess({
      file: '/bin/sleep',
      argv: ['sleep', '1000'],
      env: {},
      fds: [devNull, devNull, devNull],
      ...(cgroup ? { cgroup } : {}),
    });
    times[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    children.push(child);
  }
}
const exits = children.map((c) => new Promise((resolve) => c.onExit(resolve)));
for (const c of children) process.kill(c.pid, 'SIGKILL');
await Promise.all(exits);
closeSync(fd);
rmdirSync(dir);
const q = (list, p) => list.toSorted((a, b) => a - b)[Math.floor((list.length - 1) * p)];
const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const row = (list) => `${q(list, 0.5).toFixed(3)} / ${q(list, 0.9).toFixed(3)} / ${q(list, 0.99).toFixed(3)}`;
console.log(`spawn cost per process, ${rounds} rounds, load ${load} (ms: median / p90 / p99)`);
console.log('method  spawn of sleep            clone + attach only');
for (const name of Object.keys(times))
  console.log(`${name.padEnd(7)} ${row(times[name]).padEnd(25)} ${row(attach[name])}`);
