// The emperor's cgroup subtree (design and reasons: docs/architecture.md, "Containment"):
//
//   <own cgroup>/<self leaf>/                 the emperor itself, when it had to leave its cgroup
//                                             to enable controllers there (see openCgroupTree)
//   <own cgroup>/<tree name>/                 the emperor's subtree, one per runtime directory
//   <own cgroup>/<tree name>/<vassal>.vassal/ one per vassal: its whole usage in one read
//   .../<vassal>.vassal/<generation>.<index>  one per instance (a leaf): processes live only here
//
// This module decides whether the subtree can be had and names its directories; it does not
// spawn (the runner passes an instance's directory fd to the native spawn) nor decide when to stop.
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnProcess, type SpawnError } from '@emperor/native';
import {
  cgroupPids,
  cgroupUsage,
  defaultKillMethod,
  enableControllers,
  isPopulated,
  killCgroup,
  removeCgroup,
  waitEmpty,
  type CgroupUsage,
  type KillMethod,
} from './cgroup.js';
import { locateOwnCgroup, type Location } from './cgroup-location.js';

/** Controllers enabled below the tree root when the parent offers them (accounting). */
const ACCOUNTING = ['cpu', 'memory', 'pids'];

export interface CgroupTree {
  /** The subtree's directory, e.g. /sys/fs/cgroup/system.slice/emperor.service/emperor-1a2b3c. */
  readonly dir: string;
  /** The same as /proc/PID/cgroup names it (`/system.slice/emperor.service/emperor-1a2b3c`). */
  readonly path: string;
  readonly killMethod: KillMethod;
  /** Controllers the tree's children have (none on a hybrid host: no memory.current then). */
  readonly controllers: readonly string[];
}

export type TreeResult =
  { readonly ok: true; readonly tree: CgroupTree } | { readonly ok: false; readonly reason: string };

export interface OpenTreeOptions {
  /** The directory name of the subtree below the emperor's cgroup (`emperor-<hash of runtime dir>`). */
  readonly name: string;
  /** Where the emperor's cgroup is; default: this process's (/proc/self). */
  readonly location?: Location;
  /** Forces the freeze-and-kill fallback where cgroup.kill exists (tests). */
  readonly killMethod?: KillMethod;
  /**
   * Where the emperor moves itself when its cgroup offers controllers it has not enabled for
   * its children (systemd's Delegate=yes leaves them so) and holds no other process. Default
   * `supervisor`; null: never move.
   */
  readonly selfLeaf?: string | null;
}

/**
 * Creates (or reuses) the subtree and proves that a child can be spawned into it: a spawn of a
 * program that does not exist reaches `execve` only after the move into the cgroup succeeded,
 * so one failed exec answers "may we?" without running anything. Not ok means: use the
 * subreaper fallback, for the `reason` given.
 */
export function openCgroupTree(options: OpenTreeOptions): TreeResult {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(options.name)) {
    throw Object.assign(
      new RangeError(`Expected a cgroup name of letters, digits, '.', '_' or '-', got ${options.name}`),
      { code: 'EMP_BAD_CGROUP_NAME' },
    );
  }
  const where = options.location ?? locateOwnCgroup();
  if (!where.ok) return where;
  const dir = join(where.dir, options.name);
  const selfLeaf = options.selfLeaf === undefined ? 'supervisor' : options.selfLeaf;
  if (selfLeaf !== null) claimControllers(where.dir, selfLeaf);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    return { ok: false, reason: `cannot create the cgroup ${dir}: ${(error as Error).message}` };
  }
  const probe = join(dir, 'probe');
  try {
    mkdirSync(probe, { recursive: true });
    const refused = spawnRefusal(probe);
    if (refused !== undefined) {
      removeCgroup(dir); // a tree nobody can use: leave nothing behind
      return { ok: false, reason: `cannot spawn into the cgroup ${dir}: ${refused}` };
    }
  } catch (error) {
    return { ok: false, reason: `cannot create the cgroup ${probe}: ${(error as Error).message}` };
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // ENOENT, or a populated probe (impossible: nothing ran): left for the sweep.
    }
  }
  const controllers = enableControllers(dir, ACCOUNTING);
  const path = join(where.path, options.name);
  return {
    ok: true,
    tree: { dir, path, killMethod: options.killMethod ?? defaultKillMethod(dir), controllers },
  };
}

/**
 * cgroup v2 lets a cgroup give controllers to its children only while it has no process of its
 * own ("no internal processes"). Under systemd with Delegate=yes the emperor's service cgroup
 * has the controllers but holds the emperor: so, as systemd's delegation guide asks, the
 * emperor moves itself into a leaf of its own and enables them. Only when it is alone there: in
 * a login session (the shell beside it) moving would not help and is not ours to do. Best
 * effort; without it, accounting has cpu.stat but no memory.current.
 */
function claimControllers(dir: string, leaf: string): void {
  const missing = missingControllers(dir);
  if (missing.length === 0) return;
  let procs: string;
  try {
    procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return;
  }
  if (procs !== `${process.pid}\n` || !ownCgroupIs(dir)) return;
  try {
    moveSelfTo(join(dir, leaf));
  } catch {
    return; // EACCES, EBUSY: the tree still works, without these controllers
  }
  enableControllers(dir, missing);
}

/** Accounting controllers `dir` could enable for its children but has not. */
function missingControllers(dir: string): string[] {
  try {
    const available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
    return ACCOUNTING.filter((c) => available.includes(c) && !enabled.includes(c));
  } catch {
    return [];
  }
}

function ownCgroupIs(dir: string): boolean {
  const own = locateOwnCgroup();
  return own.ok && own.dir === dir;
}

/** Moves this whole process (every thread) into the cgroup `dir`, created if needed. */
export function moveSelfTo(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cgroup.procs'), '0');
}

/** Why a spawn into `dir` is refused, or undefined when it is allowed. */
function spawnRefusal(dir: string): string | undefined {
  const fd = openSync(dir, 'r');
  try {
    spawnProcess({
      file: '/nonexistent/emperor-cgroup-probe',
      argv: ['probe'],
      env: {},
      fds: [],
      cgroup: { fd },
    });
    return 'the probe ran'; // unreachable: there is no such program
  } catch (error) {
    const e = error as Partial<SpawnError>;
    return e.syscall === 'execve'
      ? undefined
      : `${e.syscall ?? 'spawn'}: ${e.code ?? (error as Error).message}`;
  } finally {
    closeSync(fd);
  }
}

/** `<vassal>.vassal`: the suffix keeps a vassal named `cgroup.procs` or `cpu.stat` from meeting a kernel file. */
export function vassalCgroup(tree: CgroupTree, vassal: string): string {
  return join(tree.dir, `${vassal}.vassal`);
}

/** Which process of a vassal a leaf cgroup holds: an app instance, or side daemon `index`. */
export interface InstanceLeaf {
  readonly kind?: 'app' | 'attach' | undefined;
  readonly vassal: string;
  readonly generation: number;
  readonly index: number;
  /** A recycling replacement's turn: its own leaf beside the instance it replaces. */
  readonly turn?: number | undefined;
}

/**
 * An app instance's leaf is `<generation>.<index>`, or `<generation>.<index>.<turn>` for a
 * recycling replacement (it runs beside the instance it replaces); a side daemon's (`kind`
 * attach) `attach-<index>`.
 */
export function instanceCgroup(tree: CgroupTree, of: InstanceLeaf): string {
  const turn = of.turn ?? 0;
  const leaf =
    of.kind === 'attach' ? `attach-${of.index}` : `${of.generation}.${of.index}${turn > 0 ? `.${turn}` : ''}`;
  return join(vassalCgroup(tree, of.vassal), leaf);
}

/**
 * Creates an instance's cgroup (and its vassal's, with the tree's controllers passed down) and
 * returns an open directory fd for the spawn, which the caller closes once the child exists.
 */
export function prepareInstanceCgroup(tree: CgroupTree, of: InstanceLeaf): { dir: string; fd: number } {
  const parent = vassalCgroup(tree, of.vassal);
  mkdirSync(parent, { recursive: true });
  if (tree.controllers.length > 0) enableControllers(parent, tree.controllers);
  const dir = instanceCgroup(tree, of);
  mkdirSync(dir, { recursive: true });
  return { dir, fd: openSync(dir, 'r') };
}

/**
 * Which instance of the tree a process's cgroup (as /proc/PID/cgroup names it) is, if any:
 * `{vassal, generation, index}`.
 */
export function instanceOfPath(
  tree: CgroupTree,
  cgroupPath: string,
): { vassal: string; generation: number; index: number; kind?: 'attach' } | undefined {
  const prefix = `${tree.path}/`;
  if (!cgroupPath.startsWith(prefix)) return undefined;
  const rest = cgroupPath.slice(prefix.length);
  const side = /^([^/]+)\.vassal\/attach-(\d+)$/.exec(rest);
  if (side !== null)
    return { vassal: side[1] as string, kind: 'attach', generation: 0, index: Number(side[2]) };
  const m = /^([^/]+)\.vassal\/(\d+)\.(\d+)(?:\.\d+)?$/.exec(rest);
  if (m === null) return undefined;
  return { vassal: m[1] as string, generation: Number(m[2]), index: Number(m[3]) };
}

/** A vassal's or an instance's usage (`dir` from vassalCgroup or instanceCgroup). */
export function usageOf(tree: CgroupTree, dir: string): CgroupUsage | undefined {
  return cgroupUsage(dir, tree.controllers.includes('memory'));
}

/**
 * Kills everything in `dir` (an instance's or a vassal's cgroup), waits for `populated 0` and
 * removes it. `signal` bounds the wait; an abort leaves the cgroup in place for a later sweep.
 */
export async function stopCgroup(tree: CgroupTree, dir: string, signal?: AbortSignal): Promise<void> {
  if (isPopulated(dir)) {
    await killCgroup(dir, tree.killMethod, signal);
    await waitEmpty(dir, signal);
  }
  removeCgroup(dir);
}

/** Per vassal left in the tree: its cgroup and the pids still in it. */
export function listTree(tree: CgroupTree): { vassal: string; dir: string; pids: number[] }[] {
  let entries;
  try {
    entries = readdirSync(tree.dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && e.name.endsWith('.vassal'))
    .map((e) => {
      const dir = join(tree.dir, e.name);
      return { vassal: e.name.slice(0, -'.vassal'.length), dir, pids: cgroupPids(dir) };
    });
}

/**
 * A killed emperor's leftovers: everything under the tree is killed and removed before the new
 * emperor spawns. Returns what was found, for the log.
 */
export async function sweepTree(
  tree: CgroupTree,
  signal?: AbortSignal,
): Promise<{ vassal: string; pids: number[] }[]> {
  const found = listTree(tree);
  await Promise.all(found.map((f) => stopCgroup(tree, f.dir, signal)));
  return found.filter((f) => f.pids.length > 0).map(({ vassal, pids }) => ({ vassal, pids }));
}
