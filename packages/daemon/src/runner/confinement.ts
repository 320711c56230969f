// Where an instance's processes live, and how every one of them is killed and known to be gone
// (issue #12; docs/architecture.md, "Containment"). One of two kinds, chosen once at start:
// - cgroup: each instance is spawned into a cgroup of its own (clone3 CLONE_INTO_CGROUP): no
//   fork can leave it; `cgroup.kill` ends all of it; `populated 0` says it is gone.
// - subreaper: the instance's process group, plus the emperor's children it did not spawn (the
//   orphans a child subreaper receives) that carry the instance's EMPEROR_* environment.
// Either way the runner sees one `Cell` per instance and never asks which kind it is.
import { closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CgroupTree, InstanceLeaf } from '../os/containment/cgroup-tree.js';
import {
  instanceCgroup,
  instanceOfPath,
  prepareInstanceCgroup,
  stopCgroup,
  sweepTree,
  vassalCgroup,
} from '../os/containment/cgroup-tree.js';
import { parseProcCgroup } from '../os/containment/cgroup-location.js';
import { cgroupPids, killCgroup, removeCgroup } from '../os/containment/cgroup.js';
import type { Containment } from '../os/containment/containment.js';
import { listOrphans, readTags, reapOrphans, type Orphan, type Tags } from '../os/containment/subreaper.js';
import { killGroup, readStat, type ProcStat } from '../os/process-tree.js';

/** An app instance, or (`kind: 'attach'`, generation 0) side daemon `index` of the vassal. */
export type InstanceTag = InstanceLeaf;

/** One instance's place. */
export interface Cell {
  /** For the native spawn: the instance's cgroup directory, open (cgroup mode). */
  readonly cgroupFd: number | undefined;
  /** The spawn returned: `pid` is the main process, undefined when the spawn failed. */
  spawned(pid: number | undefined): void;
  /** SIGKILL to every process of the instance (stop-timeout, watchdog, the main process exited). */
  kill(): void;
  /**
   * Kills what is left of the instance and resolves once none of it runs (its cgroup removed), or
   * after `ms` with the pids still there (uninterruptible sleep): they are left to the sweep.
   */
  end(ms: number): Promise<number[]>;
}

export interface ContainmentInfo {
  readonly mode: 'cgroup' | 'subreaper';
  /** cgroup mode: the emperor's subtree. */
  readonly cgroup?: string;
  /** subreaper mode: why there is no cgroup tree. */
  readonly reason?: string;
}

export interface Confinement {
  readonly info: ContainmentInfo;
  /** Before spawning `tag`. Throws when its cgroup cannot be made (the spawn fails with that reason). */
  enter(tag: InstanceTag): Cell;
  /** A vassal is gone: its cgroup goes too. */
  forget(vassal: string): void;
  /** Kills whatever a killed emperor left in this tree; returns the pids it found. */
  sweep(): Promise<number[]>;
  /**
   * The processes that left their instance's tree and process group (a double-fork daemon), by
   * instance (`instanceKey`), from a /proc scan: status adds their usage (and their descendants')
   * to their instance's.
   */
  escapees(procs: readonly ProcStat[]): Map<string, number[]>;
  /**
   * Every process of a running instance, escapees included, from its cgroup's `cgroup.procs`
   * (one read), for the `max-rss` sampler; undefined where that takes a /proc scan (subreaper).
   */
  processesOf(tag: InstanceTag): number[] | undefined;
  /** A second SIGTERM: SIGKILL to every process of every instance. */
  killAll(): void;
  /** Every vassal is gone: kills what no instance claims and removes the tree. */
  close(): Promise<number[]>;
}

/** The key of an instance in `escapees`. */
export function instanceKey(tag: InstanceTag): string {
  if (tag.kind === 'attach') return `${tag.vassal}/attach-${tag.index}`;
  return `${tag.vassal}/${tag.generation}/${tag.index}`;
}

export function openConfinement(containment: Containment, logger: Logger): Confinement {
  return containment.mode === 'cgroup'
    ? new CgroupConfinement(containment.tree)
    : new SubreaperConfinement(containment.reason, logger);
}

// ---------------------------------------------------------------------------------------------
// cgroup mode

class CgroupConfinement implements Confinement {
  readonly info: ContainmentInfo;
  readonly #tree: CgroupTree;

  constructor(tree: CgroupTree) {
    this.#tree = tree;
    this.info = { mode: 'cgroup', cgroup: tree.dir };
  }

  enter(tag: InstanceTag): Cell {
    const tree = this.#tree;
    const { dir, fd } = prepareInstanceCgroup(tree, tag);
    let open = true;
    const close = (): void => {
      if (open) closeSync(fd);
      open = false;
    };
    return {
      cgroupFd: fd,
      spawned: (pid) => {
        close();
        if (pid === undefined) removeCgroup(dir);
      },
      kill: () => {
        void killCgroup(dir, tree.killMethod, AbortSignal.timeout(5000)).catch(() => undefined);
      },
      end: async (ms) => {
        close();
        try {
          await stopCgroup(tree, dir, AbortSignal.timeout(ms));
          return [];
        } catch {
          return cgroupPids(dir);
        }
      },
    };
  }

  processesOf(tag: InstanceTag): number[] | undefined {
    const dir = instanceCgroup(this.#tree, tag);
    try {
      // The leaf only: an instance gets no delegation, so it has no cgroups of its own below.
      const text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
      return text === '' ? [] : text.trimEnd().split('\n').map(Number);
    } catch {
      return []; // removed meanwhile: nothing of it runs
    }
  }

  /**
   * An escapee's parent died, so it was re-parented to init (pid 1, or the nearest subreaper):
   * only those processes are asked for their cgroup (a few on a host), not every process. Reading
   * each instance's `cpu.stat` and `cgroup.procs` instead cost 100-270 ms per 1000 populated
   * cgroups here (docs/architecture.md, "Containment"), more than the whole status.
   */
  escapees(procs: readonly ProcStat[]): Map<string, number[]> {
    const out = new Map<string, number[]>();
    const present = new Set(procs.map((p) => p.pid));
    for (const p of procs) {
      if (p.ppid !== 1 && present.has(p.ppid)) continue;
      const tag = instanceOfPath(this.#tree, ownCgroupOf(p.pid) ?? '');
      if (tag === undefined) continue;
      const key = instanceKey(tag);
      out.set(key, [...(out.get(key) ?? []), p.pid]);
    }
    return out;
  }

  forget(vassal: string): void {
    removeCgroup(vassalCgroup(this.#tree, vassal));
  }

  async sweep(): Promise<number[]> {
    const found = await sweepTree(this.#tree, AbortSignal.timeout(5000)).catch(() => []);
    return found.flatMap((f) => f.pids);
  }

  killAll(): void {
    void killCgroup(this.#tree.dir, this.#tree.killMethod, AbortSignal.timeout(5000)).catch(() => undefined);
  }

  async close(): Promise<number[]> {
    const left = await this.sweep();
    removeCgroup(this.#tree.dir);
    return left;
  }
}

// ---------------------------------------------------------------------------------------------
// subreaper mode

/** While an instance ends, its orphans are looked for again at least this often (deep ones send us no SIGCHLD). */
const END_SCAN_MS = 50;

interface Ending {
  readonly tag: InstanceTag;
  readonly pgid: number;
  readonly done: () => void;
  /** The last scan found nothing of it: one more, END_SCAN_MS later, must agree. */
  clean: boolean;
}

class SubreaperConfinement implements Confinement {
  readonly info: ContainmentInfo;
  readonly #logger: Logger;
  /** Main pids of running instances: the native spawn reaps them, never the orphan reaper. */
  readonly #live = new Map<number, InstanceTag>();
  readonly #ending = new Set<Ending>();
  /** EMPEROR_* variables of orphans, by pid, with their start time (a reused pid reads again). */
  readonly #tags = new Map<number, { startTime: bigint; tags: Tags }>();
  #scanTimer: NodeJS.Timeout | undefined;
  readonly #onChild = (): void => {
    this.#schedule(5);
  };

  constructor(reason: string, logger: Logger) {
    this.info = { mode: 'subreaper', reason };
    this.#logger = logger;
    // Orphans re-parented to us must be reaped (libuv and the pidfds reap only their own).
    process.on('SIGCHLD', this.#onChild);
  }

  enter(tag: InstanceTag): Cell {
    let main: number | undefined;
    return {
      cgroupFd: undefined,
      spawned: (pid) => {
        main = pid;
        if (pid !== undefined) this.#live.set(pid, tag);
      },
      kill: () => {
        if (main !== undefined) this.#kill(tag, main);
      },
      end: (ms) => {
        const pgid = main;
        if (pgid === undefined) return Promise.resolve([]);
        this.#live.delete(pgid);
        return new Promise((resolve) => {
          const timer = setTimeout(() => {
            this.#ending.delete(ending);
            resolve(this.#members(tag, pgid));
          }, ms);
          const ending: Ending = {
            tag,
            pgid,
            clean: false,
            done: () => {
              clearTimeout(timer);
              resolve([]);
            },
          };
          this.#ending.add(ending);
          this.#scan();
        });
      },
    };
  }

  /** Orphans are our children (a subreaper's): attributed by their tags. */
  escapees(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const o of this.#orphans()) {
      const tag = tagOf(o);
      if (o.exited || tag === undefined) continue;
      const key = instanceKey(tag);
      out.set(key, [...(out.get(key) ?? []), o.pid]);
    }
    return out;
  }

  processesOf(): undefined {
    return undefined; // a process group and tagged orphans: only a /proc scan lists them
  }

  forget(): void {
    // Nothing is kept per vassal.
  }

  sweep(): Promise<number[]> {
    // A killed emperor's orphans went to init (or the next subreaper up): the state file finds them.
    return Promise.resolve([]);
  }

  killAll(): void {
    for (const [pid, tag] of this.#live) this.#kill(tag, pid);
    for (const e of this.#ending) this.#kill(e.tag, e.pgid);
  }

  async close(): Promise<number[]> {
    // Every instance is gone: an orphan still here carries no tag we know (it cleared its environment).
    const left = this.#orphans().filter((o) => !o.exited);
    for (const o of left) killPid(o.pid, o.startTime);
    await new Promise((resolve) => setTimeout(resolve, left.length > 0 ? END_SCAN_MS : 0));
    this.#scan();
    process.off('SIGCHLD', this.#onChild);
    clearTimeout(this.#scanTimer);
    return left.map((o) => o.pid);
  }

  /** SIGKILL to the instance's process group and to every orphan that carries its tag. */
  #kill(tag: InstanceTag, pgid: number): void {
    try {
      killGroup(pgid, 'SIGKILL');
    } catch {
      // EPERM: not ours to signal any more.
    }
    for (const o of this.#orphans()) {
      if (!o.exited && sameTag(tagOf(o), tag)) killPid(o.pid, o.startTime);
    }
  }

  /** The processes of an instance: its group's members and the orphans that carry its tag. */
  #members(tag: InstanceTag, pgid: number): number[] {
    const out: number[] = [];
    if (groupAlive(pgid)) out.push(pgid);
    for (const o of this.#orphans()) {
      if (o.exited || o.pid === pgid) continue;
      if (o.pgid === pgid || sameTag(tagOf(o), tag)) out.push(o.pid);
    }
    return out;
  }

  #schedule(ms: number): void {
    this.#scanTimer ??= setTimeout(() => {
      this.#scanTimer = undefined;
      this.#scan();
    }, ms);
  }

  /**
   * One look at our children: reaps exited orphans, kills what ending instances left, settles
   * the instances with nothing left, and kills orphans of instances that ended before them.
   */
  #scan(): void {
    const orphans = this.#orphans();
    reapOrphans(orphans.filter((o) => o.exited));
    const seen = new Set<number>();
    for (const o of orphans) {
      seen.add(o.pid);
      if (o.exited) {
        this.#tags.delete(o.pid);
        continue;
      }
      const tag = tagOf(o);
      const ending = [...this.#ending].find((e) => o.pgid === e.pgid || sameTag(tag, e.tag));
      if (ending !== undefined) {
        killPid(o.pid, o.startTime);
        continue;
      }
      if (tag !== undefined && !this.#claimed(tag)) {
        // Its instance has ended already (its parent outlived it, then died).
        this.#logger.warn({ vassal: tag.vassal, event: 'orphan-killed', pid: o.pid }, 'orphan-killed');
        killPid(o.pid, o.startTime);
      }
    }
    for (const pid of this.#tags.keys()) if (!seen.has(pid)) this.#tags.delete(pid);
    for (const e of this.#ending) {
      const group = groupAlive(e.pgid);
      if (group) killGroup(e.pgid, 'SIGKILL');
      const left = group || orphans.some((o) => !o.exited && (o.pgid === e.pgid || sameTag(tagOf(o), e.tag)));
      if (left) e.clean = false;
      else if (!e.clean) {
        // A daemon whose parent was exiting as we looked is re-parented to us a moment later, and
        // nothing tells us (no SIGCHLD for an adoption): seen once in CI, a crash-looping
        // daemonizer's daemon outlived its removed vassal. Two clean looks, END_SCAN_MS apart.
        e.clean = true;
      } else {
        this.#ending.delete(e);
        e.done();
      }
    }
    if (this.#ending.size > 0) this.#schedule(END_SCAN_MS);
  }

  /** Whether a running or ending instance has this tag. */
  #claimed(tag: InstanceTag): boolean {
    for (const t of this.#live.values()) if (sameTag(t, tag)) return true;
    for (const e of this.#ending) if (sameTag(e.tag, tag)) return true;
    return false;
  }

  /** Our children that the native spawn did not start: re-parented orphans. */
  #orphans(): Orphan[] {
    return listOrphans(this.#live, (pid, startTime) => {
      const cached = this.#tags.get(pid);
      if (cached?.startTime === startTime) return cached.tags;
      const tags = readTags(pid);
      this.#tags.set(pid, { startTime, tags });
      return tags;
    });
  }
}

/** The instance an orphan belongs to, by its EMPEROR_* variables: a side daemon, or an app instance. */
function tagOf(o: Orphan): InstanceTag | undefined {
  if (o.vassal === undefined) return undefined;
  if (o.attach !== undefined) return { vassal: o.vassal, kind: 'attach', generation: 0, index: o.attach };
  if (o.generation !== undefined && o.instance !== undefined)
    return { vassal: o.vassal, generation: o.generation, index: o.instance, turn: o.turn };
  return undefined;
}

/** The cgroup2 path of a process (the `0::` line of /proc/PID/cgroup), or undefined. */
function ownCgroupOf(pid: number): string | undefined {
  try {
    return parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'latin1'));
  } catch {
    return undefined; // gone meanwhile
  }
}

function sameTag(a: InstanceTag | undefined, b: InstanceTag): boolean {
  return (
    a !== undefined &&
    (a.kind ?? 'app') === (b.kind ?? 'app') &&
    a.vassal === b.vassal &&
    a.generation === b.generation &&
    a.index === b.index &&
    (a.turn ?? 0) === (b.turn ?? 0)
  );
}

/** Whether any process (zombies aside from the kernel's view) is still in the group. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILL to one pid, after checking that it is still the process seen (a pid may be reused). */
function killPid(pid: number, startTime: bigint): void {
  if (readStat(pid)?.startTime !== startTime) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone meanwhile.
  }
}
