import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import type { VassalConfig } from '@emperor/config';
import { childEnv, type InstanceIdentity } from './child-env.js';
import { precheck } from './precheck.js';

export interface SpawnedInstance {
  readonly pid: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles once with the exit status of the main process (not of its grandchildren). */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

export type SpawnResult = { ok: true; instance: SpawnedInstance } | { ok: false; reason: string };

export interface SpawnOptions {
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** Absolute path of util-linux `setpriv`, when present: makes the kernel kill the instance if the emperor dies. */
  readonly setpriv: string | undefined;
  /** The emperor's own umask: a vassal asking for another one goes through a small shell step. */
  readonly emperorUmask: number;
}

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv'];

export function findSetpriv(): string | undefined {
  return SETPRIV_CANDIDATES.find((p) => existsSync(p));
}

/** The argv actually run: optional pdeathsig and umask steps, each exec'ing the next, so the app keeps the pid. */
export function wrapArgv(config: VassalConfig, options: SpawnOptions): string[] {
  let argv = [...config.argv];
  if (config.umask !== options.emperorUmask) {
    // spawn has no umask option and process.umask() is process-wide (SPEC §8.4).
    const mask = config.umask.toString(8).padStart(4, '0');
    argv = ['/bin/sh', '-c', `umask ${mask} && exec "$0" "$@"`, ...argv];
  }
  if (options.setpriv) argv = [options.setpriv, '--pdeathsig', 'KILL', '--', ...argv];
  return argv;
}

/**
 * Spawns one instance in its own process group (pgid = pid), output piped to the caller.
 * execa is configured for a long-lived child (SPEC §8.3): no buffering, no rejection, no
 * kill-after-delay of its own, and exit observed through the child's `exit` event.
 */
export function spawnInstance(
  config: VassalConfig,
  id: InstanceIdentity,
  options: SpawnOptions,
): SpawnResult {
  let env: Record<string, string>;
  try {
    env = childEnv(config, id, options.baseEnv);
  } catch (err) {
    return { ok: false, reason: `cannot read env-file: ${(err as Error).message}` };
  }
  const reason = precheck(config.argv, config.chdir, env.PATH);
  if (reason) return { ok: false, reason };
  const [file, ...args] = wrapArgv(config, options);
  if (file === undefined) return { ok: false, reason: 'exec is empty' };
  const child = execa(file, args, {
    cwd: config.chdir,
    env,
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    forceKillAfterDelay: false,
    cleanup: false,
    encoding: 'buffer',
  });
  // With reject: false the promise never rejects; it is observed so that nothing floats.
  child.then(
    () => undefined,
    () => undefined,
  );
  if (child.pid === undefined) {
    child.kill();
    return { ok: false, reason: `cannot spawn ${file}` };
  }
  const { pid } = child;
  return {
    ok: true,
    instance: {
      pid,
      stdout: child.stdout,
      stderr: child.stderr,
      onExit: (listener) => child.once('exit', listener),
    },
  };
}
