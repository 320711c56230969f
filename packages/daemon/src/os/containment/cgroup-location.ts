// Where the emperor's cgroup is: the cgroup2 mount from /proc/self/mountinfo and the emperor's
// own cgroup from /proc/self/cgroup. Hosts differ: a unified hierarchy at /sys/fs/cgroup
// (Debian 12, controllers enabled), a hybrid one with cgroup2 at /sys/fs/cgroup/unified (v1
// controllers, none in v2), a container whose cgroup2 mount is a subtree of the host's.
import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** The root of the mount inside its file system (cgroup2: relative to our cgroup namespace). */
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly readOnly: boolean;
}

/** Decodes the octal escapes mountinfo writes for space, tab, newline and backslash. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The lines of /proc/PID/mountinfo (proc(5)): `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SOURCE SUPER`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const [root, point, opts] = [fields[3], fields[4], fields[5]];
    const fsType = fields[dash + 1];
    if (dash < 6 || root === undefined || point === undefined || opts === undefined || fsType === undefined) {
      continue;
    }
    const superOpts = fields[dash + 3] ?? '';
    const readOnly = opts.split(',').includes('ro') || superOpts.split(',').includes('ro');
    out.push({ root: unescape(root), mountPoint: unescape(point), fsType, readOnly });
  }
  return out;
}

/** The cgroup2 path of /proc/PID/cgroup (`0::/system.slice/emperor.service`), or undefined (v1 only). */
export function parseProcCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return undefined;
}

export type Location =
  | { readonly ok: true; readonly mountPoint: string; readonly path: string; readonly dir: string }
  | { readonly ok: false; readonly reason: string };

/**
 * The directory of the cgroup `path` (from /proc/self/cgroup) under one of the cgroup2 mounts.
 * A mount whose root is not an ancestor of `path` (a container's bind mount of another subtree)
 * cannot reach it.
 */
export function locate(mounts: readonly MountEntry[], path: string | undefined): Location {
  if (path === undefined)
    return { ok: false, reason: 'no cgroup2 hierarchy (this process is only in cgroup v1)' };
  // `/../x`: our cgroup is outside our cgroup namespace's root (moved after unshare).
  if (!path.startsWith('/') || path.includes('/..')) {
    return { ok: false, reason: `our cgroup ${path} is outside this cgroup namespace` };
  }
  const cgroup2 = mounts.filter((m) => m.fsType === 'cgroup2');
  if (cgroup2.length === 0) return { ok: false, reason: 'no cgroup2 file system is mounted' };
  for (const m of cgroup2) {
    const root = m.root === '/' ? '' : m.root;
    if (path !== m.root && !path.startsWith(`${root}/`)) continue;
    if (m.readOnly) return { ok: false, reason: `the cgroup2 mount ${m.mountPoint} is read-only` };
    const rest = path.slice(root.length);
    const dir = m.mountPoint + (rest === '/' ? '' : rest);
    return { ok: true, mountPoint: m.mountPoint, path, dir };
  }
  return { ok: false, reason: `no cgroup2 mount reaches our cgroup ${path}` };
}

/** This process's cgroup2 directory, from /proc/self/mountinfo and /proc/self/cgroup. */
export function locateOwnCgroup(): Location {
  let mountinfo: string;
  let cgroup: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    cgroup = readFileSync('/proc/self/cgroup', 'utf8');
  } catch (error) {
    return { ok: false, reason: `cannot read /proc: ${(error as Error).message}` };
  }
  return locate(parseMountinfo(mountinfo), parseProcCgroup(cgroup));
}
