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
  const list: VassalRunner[] = [];
  for (const runner of runners) {
    list.push(runner);
    const v = runner.vassal;
    for (const i of v.instances) if (i.pid !== undefined) roots.set(i.pid, i.startedAt);
    if (sides) for (const d of v.sides) if (d.pid !== undefined) roots.set(d.pid, d.startedAt);
  }
  if (roots.size === 0) return new Map();
  const procs = scanProcesses();
  const escapees = emperor.escapees(procs);
  const extra = new Map<number, number[]>();
  // Keys only when there are escapees (rarely): a string per instance every sample adds up at 1000.
  if (escapees.size > 0) {
    const keys = new Map<string, number>();
    for (const runner of list) {
      const v = runner.vassal;
      for (const i of v.instances)
        if (i.pid !== undefined)
          keys.set(instanceKey({ vassal: v.name, generation: i.generation, index: i.index }), i.pid);
      if (sides)
        for (const d of v.sides)
          if (d.pid !== undefined)
            keys.set(instanceKey({ vassal: v.name, kind: 'attach', generation: 0, index: d.index }), d.pid);
    }
    for (const [key, pids] of escapees) {
      const root = keys.get(key);
      if (root !== undefined) extra.set(root, pids);
    }
  }
  return sampler.sample(roots, procs, extra);
}
