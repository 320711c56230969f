// Spawning without fork() (emperor_spawn.c): the cost of a spawn no longer grows with the
// emperor's memory, and the child sets up what Node's spawn cannot (parent-death signal,
// supplementary groups, umask, LISTEN_PID = its own pid) before it execs the program itself.
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { addon, type WatchHandle } from './binding.js';
import { errnoName, withErrnoCode } from './errors.js';

export interface SpawnRequest {
  /** Absolute path of the program (no PATH search here). */
  readonly file: string;
  /** argv[0] included. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The child's fd i is fds[i]; -1 leaves it closed. */
  readonly fds: readonly number[];
  readonly cwd?: string;
  readonly umask?: number;
  /** A lower CPU priority (1-19) to start with; see setGroupPriority() to restore it. */
  readonly nice?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** `init`: the groups of this user name from NSS, as initgroups(3) from its primary `gid`;
   * `clear`: none. Default: unchanged. */
  readonly groups?: { readonly init: string; readonly gid: number } | 'clear';
  /** SIGKILL when the emperor dies (prctl PR_SET_PDEATHSIG). */
  readonly pdeathsig?: boolean;
  /** Variables set to the child's own pid (LISTEN_PID, WATCHDOG_PID). */
  readonly pidVars?: readonly string[];
  /**
   * The cgroup (v2) the child is created in, so that none of its processes ever runs outside it:
   * `fd` is an open directory fd of the cgroup (the caller keeps it). `method`: `clone3` (default;
   * clone3 with CLONE_INTO_CGROUP, and `procs` by itself where clone3 is missing) or `procs` (the
   * child writes itself into `cgroup.procs` before anything else).
   */
  readonly cgroup?: { readonly fd: number; readonly method?: CgroupMethod };
}

export type CgroupMethod = 'clone3' | 'procs';
const CGROUP_METHODS: Record<CgroupMethod, number> = { clone3: 0, procs: 1 };

/** What a failed spawn throws: `syscall` names the step (`chdir`, `setuid`, `execve`...). */
export interface SpawnError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/**
 * A child process in its own process group (pgid = pid), in the emperor's session. Its exit is seen through a
 * pidfd on the event loop, which keeps the process alive until the child has exited and is reaped.
 */
export class ChildProcessHandle {
  readonly pid: number;
  #pidfd: number;
  #watch: WatchHandle | undefined;
  #exit: Exit | undefined;
  readonly #listeners: ((exit: Exit) => void)[] = [];

  /** @internal use spawnProcess() */
  constructor(pid: number, pidfd: number) {
    this.pid = pid;
    this.#pidfd = pidfd;
    const native = addon();
    try {
      this.#watch = native.watch(pidfd, (errno) => {
        let status: [number, number] | null;
        try {
          status = native.reap(pidfd);
        } catch {
          status = [-1, 0]; // reaped by someone else (ECHILD): gone, status unknown
        }
        // A poll error stops the watch: the exit could no longer be seen, so report it now.
        if (status === null && errno === 0) return; // a spurious wake-up: not exited yet
        this.#settle(status ?? [-1, 0]);
      });
    } catch (error) {
      // Unsupervised, it must not run on: kill it (its zombie stays until the emperor exits).
      process.kill(pid, 'SIGKILL');
      native.closeFd(pidfd);
      throw error;
    }
  }

  /** The exit once it has happened. */
  get exit(): Exit | undefined {
    return this.#exit;
  }

  /** Called once with the exit status (at once if it has already exited). */
  onExit(listener: (exit: Exit) => void): void {
    if (this.#exit) listener(this.#exit);
    else this.#listeners.push(listener);
  }

  #settle([code, signal]: [number, number]): void {
    if (this.#watch) addon().unwatch(this.#watch);
    this.#watch = undefined;
    addon().closeFd(this.#pidfd);
    this.#pidfd = -1;
    this.#exit = {
      code: code >= 0 ? code : null,
      signal: signal > 0 ? (SIGNAL_NAMES.get(signal) ?? null) : null,
    };
    for (const listener of this.#listeners.splice(0)) listener(this.#exit);
  }
}

/** Spawns `request.file`; throws a SpawnError naming the step that failed in the child. */
export function spawnProcess(request: SpawnRequest): ChildProcessHandle {
  const env: string[] = [];
  const pidVars: number[] = [];
  for (const [name, value] of Object.entries(request.env)) {
    if (request.pidVars?.includes(name)) continue;
    env.push(`${name}=${value}`);
  }
  for (const name of request.pidVars ?? []) {
    pidVars.push(env.length);
    env.push(`${name}=`); // the child writes its pid after the '='
  }
  const groups = request.groups;
  let raw;
  try {
    raw = addon().spawn(request.file, request.argv, env, {
      fds: request.fds,
      cwd: request.cwd ?? null,
      umask: request.umask ?? -1,
      nice: request.nice ?? 0,
      ...(request.uid === undefined ? {} : { uid: request.uid }),
      ...(request.gid === undefined ? {} : { gid: request.gid }),
      initGroups: typeof groups === 'object' ? groups.init : null,
      ...(typeof groups === 'object' ? { groupsGid: groups.gid } : {}),
      clearGroups: groups === 'clear',
      pdeathsig: request.pdeathsig ?? false,
      pidVars,
      ...(request.cgroup === undefined
        ? {}
        : { cgroupFd: request.cgroup.fd, cgroupMethod: CGROUP_METHODS[request.cgroup.method ?? 'clone3'] }),
    });
  } catch (error) {
    throw spawnError(error, request.file);
  }
  return new ChildProcessHandle(raw.pid, raw.pidfd);
}

function spawnError(error: unknown, file: string): unknown {
  const raw = error as Partial<SpawnError>;
  if (typeof raw.errno !== 'number' || typeof raw.syscall !== 'string') return error;
  const code = errnoName(raw.errno);
  const what =
    raw.syscall === 'execve'
      ? `cannot run ${file}`
      : raw.syscall === 'cgroup'
        ? `cannot spawn ${file} into its cgroup`
        : `cannot spawn ${file}: ${raw.syscall} failed`;
  const failure: SpawnError = Object.assign(
    new Error(`${what}: ${(raw.message ?? '').toLowerCase()} (${code})`),
    { code, errno: raw.errno, syscall: raw.syscall },
  );
  return failure;
}

/** A close-on-exec pipe: the read end as a Node stream, the write end as a raw fd for `fds`. */
export function openPipe(): { readable: Socket; writeFd: number } {
  const [readFd, writeFd] = addon().pipe();
  return { readable: new Socket({ fd: readFd, readable: true, writable: false }), writeFd };
}

/** A close-on-exec pipe as two raw fds: for a reader that makes its own stream (a vassal log). */
export function openRawPipe(): { readFd: number; writeFd: number } {
  const [readFd, writeFd] = addon().pipe();
  return { readFd, writeFd };
}

/**
 * Asks for a pipe capacity of `bytes` (rounded up by the kernel to a power of two pages) and
 * returns the capacity it now has, or the current one when the kernel refused (over
 * /proc/sys/fs/pipe-max-size, or the user's pipe-user-pages-soft quota) or `fd` is no pipe.
 */
export function setPipeSize(fd: number, bytes: number): number | undefined {
  try {
    return addon().pipeSize(fd, bytes);
  } catch {
    try {
      return addon().pipeSize(fd, 0);
    } catch {
      return undefined;
    }
  }
}

/** Hands the free memory glibc's malloc keeps after a burst of allocations back to the kernel. */
export function trimMemory(): boolean {
  return addon().trimMemory();
}

/** Closes a raw fd (a pipe's write end once the child has its copy). */
export function closeRawFd(fd: number): void {
  addon().closeFd(fd);
}

/**
 * Sets the nice value of every process in a process group (setpriority PRIO_PGRP). False when
 * the group no longer exists; any other failure (EACCES, EPERM) throws with its `code`.
 */
export function setGroupPriority(pgid: number, nice: number): boolean {
  try {
    addon().setGroupPriority(pgid, nice);
    return true;
  } catch (error) {
    const errno = (error as Partial<SpawnError>).errno;
    if (typeof errno !== 'number') throw error;
    if (errno === constants.errno.ESRCH) return false;
    throw withErrnoCode(error);
  }
}
