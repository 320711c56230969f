// `max-rss`: one sampler for the whole emperor. Once a second, and only while some running
// instance has a `max-rss`, one /proc pass (the one status or history made within the second, if
// any) sums each such instance's RSS over all of its processes: its descendants, its process group
// and the escapees its containment attributes to it, the figure `emperor status` shows. An
// instance above its limit for two samples in a row gets a `recycle` event; the machine decides
// whether it may be replaced now (one instance of a vassal at a time) and the sampler asks again
// at the next sample if not. docs/architecture.md, "Recycling".
import type { ProcStat } from '../os/process-tree.js';
import { recentProcesses, sampleUsage } from '../os/process-tree.js';
import { configOf } from '../machine/step.js';
import { instanceKey } from './confinement.js';
import type { VassalRunner } from './vassal-runner.js';

/** How often the sampler looks (and so the most /proc passes it makes): once a second. */
export const RSS_SAMPLE_MS = 1000;
/** Samples in a row above the limit before an instance is replaced (a spike is not a leak). */
export const RSS_SAMPLES_OVER = 2;

export interface RssSamplerDeps {
  readonly runners: () => Iterable<VassalRunner>;
  /** Processes that left their instance's tree and group, by `instanceKey` (the containment's). */
  readonly escapees: (procs: readonly ProcStat[]) => Map<string, number[]>;
  readonly now: () => number;
}

export class RssSampler {
  readonly #deps: RssSamplerDeps;
  /** Consecutive samples above the limit, by main pid. */
  readonly #over = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  /** How long the last sample that looked at /proc took (ms), and how many instances it weighed. */
  last: { readonly ms: number; readonly instances: number } | undefined;

  constructor(deps: RssSamplerDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#timer ??= setInterval(() => {
      this.sample();
    }, RSS_SAMPLE_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One sample: weighs every running instance that has a `max-rss` and asks for the recycles due. */
  sample(): void {
    const roots = new Map<number, { runner: VassalRunner; limit: number; startedAt: number }>();
    const keys = new Map<string, number>();
    for (const runner of this.#deps.runners()) {
      const v = runner.vassal;
      if (v.state !== 'running') continue;
      for (const i of v.instances) {
        if (i.pid === undefined || i.state !== 'running' || i.recycling !== undefined) continue;
        const limit = configOf(v, i).maxRssBytes;
        if (limit === undefined) continue;
        roots.set(i.pid, { runner, limit, startedAt: i.startedAt });
        keys.set(instanceKey({ vassal: v.name, generation: i.generation, index: i.index }), i.pid);
      }
    }
    if (roots.size === 0) {
      this.#over.clear();
      return;
    }
    const started = performance.now();
    const procs = recentProcesses(RSS_SAMPLE_MS / 2);
    const extra = new Map<number, number[]>();
    for (const [key, pids] of this.#deps.escapees(procs)) {
      const root = keys.get(key);
      if (root !== undefined) extra.set(root, pids);
    }
    const usage = sampleUsage([...roots.keys()], procs, extra);
    this.last = { ms: performance.now() - started, instances: roots.size };
    for (const pid of this.#over.keys()) if (!roots.has(pid)) this.#over.delete(pid);
    const at = this.#deps.now();
    for (const [pid, { runner, limit }] of roots) {
      const rss = usage.get(pid)?.rssBytes;
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
  }
}

function mib(bytes: number): string {
  const m = bytes / 2 ** 20;
  return m >= 10 ? String(Math.round(m)) : String(Math.round(m * 10) / 10);
}
