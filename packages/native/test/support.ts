// Helpers shared by this package's tests: deadlines instead of sleeps, short temp dirs, fixtures.
import { readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { closeRawFd, openPipe, spawnProcess, type Exit, type SpawnRequest } from '../src/index.js';

export { exitStatus as exited, spawnChild, tempDir, waitFor } from '@emperor/test-support';

/** Fixture programs are read from the source tree (they are not compiled). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}

/** The kernel object behind one of our fds, e.g. `socket:[123456]`: how a child's fds are matched. */
export function fdTarget(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}

/**
 * The directory of this process's cgroup (v2), from /proc/self/cgroup and the cgroup2 mount in
 * /proc/self/mountinfo; undefined when there is none (cgroup v1 only).
 */
export function ownCgroupDir(): string | undefined {
  const path = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  if (path === undefined) return undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const root = f[3];
    const point = f[4];
    if (f[f.indexOf('-') + 1] !== 'cgroup2' || root === undefined || point === undefined) continue;
    if (root !== '/' && path !== root && !path.startsWith(`${root}/`)) continue;
    const rest = root === '/' ? path : path.slice(root.length);
    return rest === '/' ? point : point + rest;
  }
  return undefined;
}

/** An entry of `fds` that stands for the write end of the pipe whose output is collected. */
export const OUT = 'out';

/** Spawns `request`, its OUT fds being one pipe; resolves with what came out of it and the exit. */
export async function collect(
  request: Omit<SpawnRequest, 'fds'> & { fds: readonly (number | typeof OUT)[] },
): Promise<{ out: string; exit: Exit; pid: number }> {
  const out = openPipe();
  let child;
  try {
    child = spawnProcess({ ...request, fds: request.fds.map((fd) => (fd === OUT ? out.writeFd : fd)) });
  } finally {
    closeRawFd(out.writeFd);
  }
  let text = '';
  out.readable.setEncoding('utf8');
  out.readable.on('data', (chunk: string) => (text += chunk));
  const [exit] = await Promise.all([
    new Promise<Exit>((resolve) => {
      child.onExit(resolve);
    }),
    new Promise((resolve) => out.readable.once('close', resolve)),
  ]);
  return { out: text, exit, pid: child.pid };
}
