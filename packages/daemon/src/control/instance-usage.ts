// CPU and memory of every running process of some vassals, keyed by main pid, in one /proc scan:
// what status and history both show. A daemon that left its instance's tree and group still
// counts for its instance (the containment attributes it: `emperor.escapees`).
import type { Emperor } from '../emperor.js';
import { instanceKey } from '../runner/confinement.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import { scanProcesses } from '../os/process-tree.js';
import type { CpuSampler, InstanceUsage } from './cpu-sampler.js';

export function instanceUsage(
  emperor: Emperor,
  sampler: CpuSampler,
  runners: Iterable<VassalRunner>,
  { sides }: { sides: boolean },
): Map<number, InstanceUsage> {
  const roots = new Map<number, number>();
  const keys = new Map<string, number>();
  for (const runner of runners) {
    const v = runner.vassal;
    for (const i of v.instances) {
      if (i.pid === undefined) continue;
      roots.set(i.pid, i.startedAt);
      keys.set(instanceKey({ vassal: v.name, generation: i.generation, index: i.index }), i.pid);
    }
    if (!sides) continue;
    for (const d of v.sides) {
      if (d.pid === undefined) continue;
      roots.set(d.pid, d.startedAt);
      keys.set(instanceKey({ vassal: v.name, kind: 'attach', generation: 0, index: d.index }), d.pid);
    }
  }
  if (roots.size === 0) return new Map();
  const procs = scanProcesses();
  const extra = new Map<number, number[]>();
  for (const [key, pids] of emperor.escapees(procs)) {
    const root = keys.get(key);
    if (root !== undefined) extra.set(root, pids);
  }
  return sampler.sample(roots, procs, extra);
}
