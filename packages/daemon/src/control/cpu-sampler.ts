// CPU % per instance: the CPU time its process tree used between two samples, over the wall time
// between them. The first sample of a process has nothing to compare with, so it reports the
// average over the process's life; samples closer than MIN_INTERVAL_MS reuse the last figure,
// so that two `emperor status` calls in a row do not print noise.
import { sampleUsage, scanProcesses, type ProcStat, type Usage } from '../os/process-tree.js';

const MIN_INTERVAL_MS = 250;

/** Updated in place: a dashboard samples 1000 instances every 3 s. */
interface Sample {
  cpuSeconds: number;
  at: number;
  percent: number;
}

export interface InstanceUsage {
  readonly rssBytes: number;
  readonly cpuPercent: number;
  readonly cpuSeconds: number;
}

export class CpuSampler {
  readonly #last = new Map<number, Sample>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Usage of each root pid's process tree; `startedAt` (epoch ms) of each root for first samples.
   * `extra`: more pids whose trees count for a root (escapees its containment attributes to it).
   */
  sample(
    roots: ReadonlyMap<number, number>,
    procs: readonly ProcStat[] = scanProcesses(),
    extra: ReadonlyMap<number, readonly number[]> = new Map(),
  ): Map<number, InstanceUsage> {
    const at = this.#now();
    const usage: Map<number, Usage> = sampleUsage(roots.keys(), procs, extra);
    const out = new Map<number, InstanceUsage>();
    for (const [pid, u] of usage) {
      const prev = this.#last.get(pid);
      let percent: number;
      if (prev !== undefined && at - prev.at < MIN_INTERVAL_MS) {
        percent = prev.percent;
      } else {
        const since = prev?.at ?? roots.get(pid) ?? at;
        const base = prev?.cpuSeconds ?? 0;
        const wall = (at - since) / 1000;
        percent = wall > 0 ? Math.max(0, ((u.cpuSeconds - base) / wall) * 100) : 0;
        if (prev === undefined) this.#last.set(pid, { cpuSeconds: u.cpuSeconds, at, percent });
        else {
          prev.cpuSeconds = u.cpuSeconds;
          prev.at = at;
          prev.percent = percent;
        }
      }
      out.set(pid, {
        rssBytes: u.rssBytes,
        cpuPercent: Math.round(percent * 10) / 10,
        cpuSeconds: u.cpuSeconds,
      });
    }
    // Forget processes that are gone, so the map never grows with pid churn.
    if (this.#last.size > out.size) {
      const alive = new Set(procs.map((p) => p.pid));
      for (const pid of this.#last.keys()) if (!alive.has(pid)) this.#last.delete(pid);
    }
    return out;
  }
}
