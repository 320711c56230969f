// Helpers shared by every workspace's tests. One `waitFor` for all: the copies had drifted apart
// (5, 10, 15 and 20 s deadlines; two kept exceptions as "last seen", one let them escape).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { TestContext } from 'node:test';

/** A deadline, not a delay: generous enough for a 2-core machine at load average 10. */
export const DEADLINE_MS = 20_000;

export interface WaitOptions {
  /** What is awaited, for the error message. */
  what: string;
  timeout?: number;
  interval?: number;
  /** What to report on timeout instead of the probe's last value (e.g. the log so far). */
  seen?: () => unknown;
}

/**
 * Polls `probe` until it returns something other than undefined, null or false. A probe that
 * throws counts as "not yet" (a file not written yet, a port not open yet); the last value or
 * error is reported when the deadline passes.
 */
export async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { what, timeout = DEADLINE_MS, interval = 10, seen }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeout} ms waiting for ${what}; last saw: ${describe(seen ? seen() : last)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  const json = JSON.stringify(value, null, 1) as string | undefined; // undefined for a function
  return (json ?? typeof value).slice(0, 3000);
}

/** Resolves when the child has exited, with its code or signal. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

/** The exit code, or the signal's name when it was killed. */
export async function exitStatus(child: ChildProcess): Promise<number | string> {
  const { code, signal } = await exited(child);
  return code ?? signal ?? 'unknown';
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

/** Collects the lines a child writes on one of its pipes. */
export function lines(stream: NodeJS.ReadableStream | null | undefined): string[] {
  const out: string[] = [];
  let tail = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    const parts = (tail + chunk).split('\n');
    tail = parts.pop() ?? '';
    out.push(...parts);
  });
  return out;
}

/** The environment for a child Node: NODE_EXTRA_CA_CERTS costs ~35 ms per start here. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** A fresh directory under /tmp (short, for the 108-byte unix socket limit), removed after the test. */
export function tempDir(t: TestContext, prefix = 'emp-'): string {
  const dir = mkdtempSync(`/tmp/${prefix}`);
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * `setpriv` arguments that run a command as `user` (root only) with CAP_DAC_READ_SEARCH as an
 * ambient capability: it can read this checkout's code wherever it was cloned (a 0700 `mktemp -d`
 * refuses other users at its top), while everything that needs write access, such as connecting
 * to a unix socket or moving a process into a cgroup, is still checked as that user.
 */
export function asUserReading(user: string | number, groups: 'clear' | 'init' = 'clear'): string[] {
  return [
    'setpriv',
    `--reuid=${user}`,
    `--regid=${user}`,
    groups === 'clear' ? '--clear-groups' : '--init-groups',
    '--inh-caps=+dac_read_search',
    '--ambient-caps=+dac_read_search',
  ];
}

export { keepAliveClient, type KeepAliveClient } from './keep-alive-client.js';
