import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { execa, type Options } from 'execa';
import type { VassalConfig } from '@emperor/config';
import { childEnv, type InstanceIdentity } from './child-env.js';
import { precheck } from './precheck.js';

export interface SpawnedInstance {
  readonly pid: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** With `ready = fd`: what the instance writes to its `EMPEROR_NOTIFY_FD`. */
  readonly notify: Readable | undefined;
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

/** What an instance inherits besides stdio. */
export interface InstanceChannels {
  /** Owned listening sockets, passed at fd 3 onwards. */
  readonly fds: readonly number[];
  readonly fdNames: readonly string[];
  /** `ready = notify`: the instance's own abstract datagram socket, `@...`. */
  readonly notifySocket: string | undefined;
  /** `ready = fd`: a pipe after the sockets, named by EMPEROR_NOTIFY_FD. */
  readonly notifyFd: boolean;
}

export const NO_CHANNELS: InstanceChannels = {
  fds: [],
  fdNames: [],
  notifySocket: undefined,
  notifyFd: false,
};

/** The argv actually run: optional pdeathsig and shell steps, each exec'ing the next, so the app keeps the pid. */
export function wrapArgv(config: VassalConfig, options: SpawnOptions, withSockets = false): string[] {
  const ownPid: string[] = [];
  if (withSockets) ownPid.push('LISTEN_PID');
  if (config.watchdogMs !== undefined) ownPid.push('WATCHDOG_PID');
  let argv = [...config.argv];
  const steps: string[] = [];
  // spawn has no umask option and process.umask() is process-wide (SPEC §8.4).
  if (config.umask !== options.emperorUmask) steps.push(`umask ${config.umask.toString(8).padStart(4, '0')}`);
  // sd_listen_fds() and sd_watchdog_enabled() want LISTEN_PID / WATCHDOG_PID = the app's own pid,
  // unknown to Node before the spawn; the shell knows its pid ($$) and exec keeps it.
  for (const name of ownPid) steps.push(`export ${name}=$$`);
  if (steps.length > 0) argv = ['/bin/sh', '-c', `${steps.join(' && ')} && exec "$0" "$@"`, ...argv];
  if (options.setpriv)
    argv = [options.setpriv, '--pdeathsig', 'KILL', ...identityArgs(config), '--', ...argv];
  return argv;
}

/** setpriv's arguments for `user` / `group`: spawn has uid/gid but cannot set supplementary groups. */
function identityArgs(config: VassalConfig): string[] {
  const { user, group } = config;
  if (!switchesIdentity(config)) return [];
  const args: string[] = [];
  if (user) args.push(`--reuid=${user.uid}`);
  args.push(`--regid=${group?.gid ?? user?.gid ?? 0}`);
  // A named user gets its groups from /etc/group; a bare id or a group alone gets none.
  args.push(user && !/^\d+$/.test(user.name) ? '--init-groups' : '--clear-groups');
  return args;
}

/** Why this emperor cannot run the vassal as its `user` / `group`, if it cannot. */
function switchesIdentity(config: VassalConfig): boolean {
  const { user, group } = config;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return (user !== undefined && user.uid !== uid) || (group !== undefined && group.gid !== gid);
}

export function identityProblem(config: VassalConfig, options: SpawnOptions): string | undefined {
  const { user, group } = config;
  if (!switchesIdentity(config)) return undefined;
  if ((process.getuid?.() ?? 0) !== 0)
    return `only root can run a vassal as ${user ? `user ${user.name}` : `group ${group?.name ?? ''}`}`;
  if (!options.setpriv) return '`user` and `group` need util-linux setpriv (apt-get install util-linux)';
  return undefined;
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
  channels: InstanceChannels = NO_CHANNELS,
): SpawnResult {
  let env: Record<string, string>;
  try {
    env = childEnv(config, id, options.baseEnv);
  } catch (err) {
    return { ok: false, reason: `cannot read env-file: ${(err as Error).message}` };
  }
  const { fds } = channels;
  if (fds.length > 0) {
    env.LISTEN_FDS = String(fds.length);
    env.LISTEN_FDNAMES = channels.fdNames.join(':');
  }
  if (channels.notifySocket !== undefined) env.NOTIFY_SOCKET = channels.notifySocket;
  if (config.watchdogMs !== undefined) env.WATCHDOG_USEC = String(config.watchdogMs * 1000);
  const notifyAt = 3 + fds.length;
  if (channels.notifyFd) env.EMPEROR_NOTIFY_FD = String(notifyAt);
  const reason = identityProblem(config, options) ?? precheck(config.argv, config.chdir, env.PATH);
  if (reason) return { ok: false, reason };
  const [file, ...args] = wrapArgv(config, options, fds.length > 0);
  if (file === undefined) return { ok: false, reason: 'exec is empty' };
  const extra: ('pipe' | number)[] = [...fds];
  if (channels.notifyFd) extra.push('pipe');
  // execa passes fd numbers at index 3+ through to Node (checked), though its types only allow them at 0-2.
  const stdio = ['ignore', 'pipe', 'pipe', ...extra] as unknown as Options['stdio'];
  const child = execa(file, args, {
    cwd: config.chdir,
    env,
    extendEnv: false,
    detached: true,
    stdio,
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
  const { pid, stdout, stderr } = child;
  if (!stdout || !stderr) throw new Error('execa gave no stdout/stderr pipes'); // stdio above asks for both
  return {
    ok: true,
    instance: {
      pid,
      stdout,
      stderr,
      notify: channels.notifyFd ? (child.stdio[notifyAt] as Readable | undefined) : undefined,
      onExit: (listener) => child.once('exit', listener),
    },
  };
}
