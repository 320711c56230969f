// Loads the addon on first use, never at import time: a prebuilt binary, or one compiled at install.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

declare const watchHandle: unique symbol;
/** An active uv_poll_t inside the addon; only `unwatch` may use it. */
export type WatchHandle = { readonly [watchHandle]: never };

export interface RawDatagram {
  data: string;
  pid: number | undefined;
  uid: number | undefined;
  truncated: boolean;
}

/** The addon's functions exactly as emperor_native.c defines them. Errors carry `errno` and `syscall`. */
export interface Addon {
  bindTcp(host: string, port: number, backlog: number, v6only: boolean): { fd: number; port: number };
  bindUnix(path: string, backlog: number, mode: number, uid: number, gid: number): number;
  pollReadable(fd: number): boolean;
  /** The callback gets 0, or an errno after which the watch has stopped. */
  watch(fd: number, callback: (errno: number) => void): WatchHandle;
  unwatch(handle: WatchHandle): void;
  openDatagram(abstractName: string): number;
  recvDatagrams(fd: number): RawDatagram[];
  closeFd(fd: number): void;
  sendDatagram(address: string, data: string): void;
  spawn(file: string, argv: readonly string[], env: readonly string[], options: RawSpawnOptions): RawChild;
  /** [exit code or -1, signal number or 0] once exited, else null. */
  reap(pidfd: number): [number, number] | null;
  pipe(): [number, number];
  /** F_SETPIPE_SZ (`bytes` > 0) or F_GETPIPE_SZ (0): the capacity after the call. */
  pipeSize(fd: number, bytes: number): number;
  /** malloc_trim(0): true when memory went back to the kernel. */
  trimMemory(): boolean;
  setGroupPriority(pgid: number, nice: number): void;
  setChildSubreaper(on: boolean): void;
  isChildSubreaper(): boolean;
  /** [exit code or -1, signal number or 0] once that child has exited (now reaped), else null. */
  reapPid(pid: number): [number, number] | null;
  /** pidfd_open(pid, 0): an fd that becomes readable when that process exits. */
  pidfdOpen(pid: number): number;
  /** execve(2): returns only by throwing. */
  execve(file: string, argv: readonly string[], env: readonly string[]): void;
}

export interface RawSpawnOptions {
  fds: readonly number[];
  cwd: string | null;
  /** -1: inherit the emperor's. */
  umask: number;
  /** 0: inherit the emperor's. */
  nice: number;
  /** Absent: unchanged. */
  uid?: number;
  gid?: number;
  initGroups: string | null;
  /** The primary gid initgroups(3) starts from. */
  groupsGid?: number;
  clearGroups: boolean;
  pdeathsig: boolean;
  pidVars: readonly number[];
  /** A directory fd of the cgroup to spawn into; absent or -1: the emperor's own. */
  cgroupFd?: number;
  /** 0: clone3 with CLONE_INTO_CGROUP (falls back to 1 where clone3 is missing); 1: the child
   * writes itself into cgroup.procs before anything else. */
  cgroupMethod?: number;
}

export interface RawChild {
  pid: number;
  pidfd: number;
}

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url)); // from dist/src/
let loaded: Addon | undefined;

export function addon(): Addon {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  try {
    // build/Release (a local compile) first, else the prebuilt binary for this platform, arch and
    // libc from prebuilds/ (docs/architecture.md, "Packaging").
    const load = require('node-gyp-build') as (dir: string) => unknown;
    loaded = load(PACKAGE_DIR) as Addon;
  } catch (cause) {
    throw Object.assign(
      new Error(
        `cannot load the @emperor/native addon from ${PACKAGE_DIR} (${process.platform}-${process.arch}): ` +
          'no prebuilt binary fits and none was compiled; with gcc, make and python3 installed, ' +
          '`npm rebuild -g emperor --build-from-source` compiles it (in a checkout: ' +
          '`npm rebuild -w packages/native --build-from-source`)',
        { cause },
      ),
      { code: 'EMP_NATIVE_NOT_BUILT' },
    );
  }
  return loaded;
}
