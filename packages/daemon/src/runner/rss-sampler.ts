// `max-rss`: one sampler for the whole emperor. Once a second, and only while some running
// instance has a `max-rss`, it sums each such instance's RSS over all of its processes, the
// figure `emperor status` shows. With cgroups: each instance's `cgroup.procs` and the statm of
// each process in it (escapees included: none leaves its cgroup), so the cost follows the
// instances that have a limit, not the host. Without (subreaper mode): one /proc pass (the one
// status or history made within the last half second, if any) and the instance's descendants,
// process group and the escapees its containment attributes to it. An instance above its limit
// for two samples in a row gets a `recycle` event; the machine decides whether it may be
// replaced now (one instance of a vassal at a time) and the sampler asks again at the next
// sample if not. docs/architecture.md, "Recycling".
import type { ProcStat } from '../os/process-tree.js';
import { pageSize, readRssPages, recentProcesses, sampleUsage } from '../os/process-tree.js';
import { configOf } from '../machine/step.js';
import { instanceKey, type InstanceTag } from './confinement.js';
import type { VassalRunner } from './vassal-runner.js';

/** How often the sampler looks (and so the most /proc passes it makes): once a second. */
export const RSS_SAMPLE_MS = 1000;
/**
 * It never takes more than about 1/this of a core: after a sample that took T ms of CPU the next
 * comes T x this later if that is more than a second (thousands of limited instances), but
 * never more than RSS_SAMPLE_MAX_MS later.
 */
export const RSS_SAMPLE_BUDGET = 50;
export const RSS_SAMPLE_MAX_MS = 5000;
/** Samples in a row above the limit before an instance is replaced (a spike is not a leak). */
export const RSS_SAMPLES_OVER = 2;

export interface RssSamplerDeps {
  readonly runners: () => Iterable<VassalRunner>;
  /** Processes that left their instance's tree and group, by `instanceKey` (the containment's). */
  readonly escapees: (procs: readonly ProcStat[]) => Map<string, number[]>;
  /** Every pid of an instance from its cgroup (one read), or undefined without cgroups. */
  readonly processesOf: (tag: InstanceTag) => number[] | undefined;
  readonly now: () => number;
}

export class RssSampler {
  readonly #deps: RssSamplerDeps;
  /** Consecutive samples above the limit, by main pid. */
  readonly #over = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last sample that weighed anything: the CPU it took (ms), how many instances, which way. */
  last: { readonly ms: number; readonly instances: number; readonly way: 'cgroups' | 'proc' } | undefined;

  constructor(deps: RssSamplerDeps) {
    this.#deps = deps;
  }

  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const next = (): void => {
      const ms = this.sample();
      if (this.#closed) return;
      this.#timer = setTimeout(
        next,
        Math.min(RSS_SAMPLE_MAX_MS, Math.max(RSS_SAMPLE_MS, ms * RSS_SAMPLE_BUDGET)),
      );
      this.#timer.unref();
    };
    this.#timer = setTimeout(next, RSS_SAMPLE_MS);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One sample: weighs every running instance that has a `max-rss` and asks for the recycles due.
   * Returns the CPU time the weighing took (ms; 0 with nothing to weigh).
   */
  sample(): number {
    const roots = new Map<number, { runner: VassalRunner; limit: number; tag: InstanceTag }>();
    for (const runner of this.#deps.runners()) {
      const v = runner.vassal;
      if (v.state !== 'running') continue;
      for (const i of v.instances) {
        if (i.pid === undefined || i.state !== 'running' || i.recycling !== undefined) continue;
        const limit = configOf(v, i).maxRssBytes;
        if (limit === undefined) continue;
        const tag = { vassal: v.name, generation: i.generation, index: i.index, turn: i.turn };
        roots.set(i.pid, { runner, limit, tag });
      }
    }
    if (roots.size === 0) {
      this.#over.clear();
      return 0;
    }
    const cpu = process.cpuUsage();
    // About two small reads per instance (its cgroup.procs, its process's statm) against one per
    // process on the host: the cgroups cost less unless nearly every process is a sampled instance.
    const targeted = this.#byCgroup(roots);
    const usage = targeted === false ? this.#byProcScan(roots) : targeted;
    const used = process.cpuUsage(cpu);
    this.last = {
      ms: (used.user + used.system) / 1000,
      instances: roots.size,
      way: targeted ? 'cgroups' : 'proc',
    };
    for (const pid of this.#over.keys()) if (!roots.has(pid)) this.#over.delete(pid);
    const at = this.#deps.now();
    for (const [pid, { runner, limit }] of roots) {
      const rss = usage.get(pid);
      if (rss === undefined || rss <= limit) {
        this.#over.delete(pid);
        continue;
      }
      const n = (this.#over.get(pid) ?? 0) + 1;
      this.#over.set(pid, n);
      if (n < RSS_SAMPLES_OVER) continue;
      const reason = `rss ${mib(rss)} MiB > max-rss ${mib(limit)} MiB for ${n} samples`;
      runner.dispatch({ type: 'recycle', pid, reason, at });
    }
    return this.last.ms;
  }

  /** RSS by main pid, from each instance's cgroup; false without cgroups. */
  #byCgroup(roots: ReadonlyMap<number, { tag: InstanceTag }>): Map<number, number> | false {
    const out = new Map<number, number>();
    const page = pageSize();
    for (const [pid, { tag }] of roots) {
      const pids = this.#deps.processesOf(tag);
      if (pids === undefined) return false;
      let pages = 0;
      for (const p of pids) pages += readRssPages(p);
      out.set(pid, pages * page);
    }
    return out;
  }

  /** RSS by main pid, from one /proc pass (shared with status if it made one just now). */
  #byProcScan(roots: ReadonlyMap<number, { tag: InstanceTag }>): Map<number, number> {
    const procs = recentProcesses(RSS_SAMPLE_MS / 2);
    const keys = new Map<string, number>();
    for (const [pid, { tag }] of roots) keys.set(instanceKey(tag), pid);
    const extra = new Map<number, number[]>();
    for (const [key, pids] of this.#deps.escapees(procs)) {
      const root = keys.get(key);
      if (root !== undefined) extra.set(root, pids);
    }
    const out = new Map<number, number>();
    for (const [pid, u] of sampleUsage([...roots.keys()], procs, extra)) out.set(pid, u.rssBytes);
    return out;
  }
}

function mib(bytes: number): string {
  const m = bytes / 2 ** 20;
  return m >= 10 ? String(Math.round(m)) : String(Math.round(m * 10) / 10);
}
