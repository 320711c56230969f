import { openSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import {
  closeRawFd,
  openPipe,
  openRawPipe,
  spawnProcess,
  type ChildProcessHandle,
  type SpawnRequest,
} from '@emperor/native';
import type { VassalConfig } from '@emperor/config';
import type { InstanceIdentity } from './child-env.js';
import { prepareSpawn, switchesIdentity } from './precheck.js';
import { fdBudget } from '../os/fd-budget.js';

export interface SpawnedInstance {
  readonly pid: number;
  /** Raw read ends of the output pipes: the vassal log reads them (and closes them) itself. */
  readonly stdout: number;
  readonly stderr: number;
  /** With `ready = fd`: what the instance writes to its `EMPEROR_NOTIFY_FD`. */
  readonly notify: Readable | undefined;
  /** Settles once with the exit status of the main process (not of its grandchildren). */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

export type SpawnResult = { ok: true; instance: SpawnedInstance } | { ok: false; reason: string };

export interface SpawnOptions {
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** The emperor's own umask: only a vassal asking for another one sets its own. */
  readonly emperorUmask: number;
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

/** The credentials to switch to for `user` / `group` (spawn's uid/gid cannot set supplementary groups). */
function identity(config: VassalConfig): Pick<SpawnRequest, 'uid' | 'gid' | 'groups'> {
  const { user, group } = config;
  if (!switchesIdentity(config)) return {};
  return {
    ...(user ? { uid: user.uid } : {}),
    gid: group?.gid ?? user?.gid ?? 0,
    // A named user gets its groups from /etc/group (initgroups); a bare id or a group alone gets none.
    groups: user && !/^\d+$/.test(user.name) ? { init: user.name, gid: user.gid } : 'clear',
  };
}

let devNull: number | undefined;
type Pipe = ReturnType<typeof openPipe>;
type RawPipe = ReturnType<typeof openRawPipe>;

/** What to spawn: its identity (its EMPEROR_* tags) and the argv to exec. */
export interface SpawnWhat {
  readonly id: InstanceIdentity;
  readonly argv: readonly string[];
}

/**
 * Spawns one process of a vassal (an app instance or a side process, with the argv and channels
 * it is given) in its own process group (pgid = pid) and, given one, its own cgroup,
 * output piped to the caller, through the native spawn (no fork of the emperor, no wrapper exec'd first). It dies
 * with the emperor (parent-death signal), and its exit is seen through a pidfd.
 */
export function spawnInstance(
  config: VassalConfig,
  what: SpawnWhat,
  options: SpawnOptions,
  channels: InstanceChannels = NO_CHANNELS,
  nice = 0,
  /** An open directory fd of the instance's cgroup: the child starts inside it (clone3). */
  cgroupFd?: number,
): SpawnResult {
  const prepared = prepareSpawn(config, what.id, options.baseEnv, what.argv);
  if (!prepared.ok) return prepared;
  const { env } = prepared;
  const { fds } = channels;
  // uWSGI gets its owned sockets as `--KEY fd://N` arguments instead (config/uwsgi.ts).
  const listenFds = fds.length > 0 && config.uwsgi?.fdsOnArgv !== true;
  if (listenFds) {
    env.LISTEN_FDS = String(fds.length);
    env.LISTEN_FDNAMES = channels.fdNames.join(':');
  }
  if (channels.notifySocket !== undefined) env.NOTIFY_SOCKET = channels.notifySocket;
  // `watchdog` is the app's: a side process gets none.
  const watchdogMs = what.id.kind === 'attach' ? undefined : config.watchdogMs;
  const watchdog = watchdogMs !== undefined;
  if (watchdog) env.WATCHDOG_USEC = String(watchdogMs * 1000);
  const notifyAt = 3 + fds.length;
  if (channels.notifyFd) env.EMPEROR_NOTIFY_FD = String(notifyAt);
  // sd_listen_fds() and sd_watchdog_enabled() want LISTEN_PID / WATCHDOG_PID = the app's own pid.
  const pidVars: string[] = [];
  if (listenFds) pidVars.push('LISTEN_PID');
  if (watchdog) pidVars.push('WATCHDOG_PID');
  // The last fds are the control socket's: the operator must still reach a full emperor.
  const shortage = fdBudget().spawnShortage();
  if (shortage !== undefined) return { ok: false, reason: shortage };
  devNull ??= openSync('/dev/null', 'r');
  const pipes: Pipe[] = [];
  const outputs: RawPipe[] = [];
  let child: ChildProcessHandle;
  try {
    const pipe = (): Pipe => {
      const p = openPipe();
      pipes.push(p);
      return p;
    };
    const output = (): RawPipe => {
      const p = openRawPipe();
      outputs.push(p);
      return p;
    };
    const [stdout, stderr] = [output(), output()];
    const notify = channels.notifyFd ? pipe() : undefined;
    child = spawnProcess({
      file: prepared.file,
      argv: what.argv,
      env,
      fds: [devNull, stdout.writeFd, stderr.writeFd, ...fds, ...(notify ? [notify.writeFd] : [])],
      cwd: config.chdir,
      ...(config.umask !== options.emperorUmask ? { umask: config.umask } : {}),
      nice,
      ...identity(config),
      pdeathsig: true,
      pidVars,
      ...(cgroupFd !== undefined ? { cgroup: { fd: cgroupFd } } : {}),
    });
  } catch (error) {
    for (const p of pipes) p.readable.destroy();
    for (const p of outputs) closeRawFd(p.readFd);
    const { code, errno, message } = error as NodeJS.ErrnoException;
    const emfile = code === 'EMFILE' || errno === constants.errno.EMFILE; // a spawn's, or a pipe's
    if (emfile) return { ok: false, reason: fdBudget().explain() };
    // The program was found on the emperor's PATH; the user the vassal runs as may not reach it.
    if (code === 'EACCES' && config.user)
      return {
        ok: false,
        reason: `${message}: user ${config.user.name} cannot run it (give \`exec\` a path that user can reach)`,
      };
    return { ok: false, reason: message };
  } finally {
    // The child has its copies; ours would keep the pipes open after it exits.
    for (const p of [...pipes, ...outputs]) closeRawFd(p.writeFd);
  }
  const [stdout, stderr] = outputs as [RawPipe, RawPipe];
  const notify = pipes[0];
  const { pid } = child;
  return {
    ok: true,
    instance: {
      pid,
      stdout: stdout.readFd,
      stderr: stderr.readFd,
      notify: notify?.readable,
      onExit: (listener) => {
        child.onExit(({ code, signal }) => {
          listener(code, signal);
        });
      },
    },
  };
}
