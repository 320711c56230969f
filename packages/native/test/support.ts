// Helpers shared by this package's tests: deadlines instead of sleeps, short temp dirs, fixtures.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/** Fixture programs are read from the source tree (they are not compiled). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}

/**
 * Polls `probe` until it returns something other than undefined/false, or fails after `timeout`
 * ms saying what it waited for and what it last saw.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeout = 5000, what }: { timeout?: number; what: string },
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last saw: ${String(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A fresh directory under /tmp (short, for the 108-byte unix socket limit), removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync('/tmp/emp-');
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Spawns a process that is SIGKILLed after the test if it is still running. */
export function spawnChild(
  t: TestContext,
  command: string,
  args: string[],
  options: SpawnOptions,
): ChildProcess {
  const child = spawn(command, args, options);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Resolves with the exit code (or signal) of a child process. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });
}

/** The kernel object behind one of our fds, e.g. `socket:[123456]`: how a child's fds are matched. */
export function fdTarget(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}
