// Which containment the emperor uses (issue #12), decided once at start: a cgroup tree where one
// can be had, else the emperor becomes a child subreaper. `emperor.containment` in status.
import { openCgroupTree, type CgroupTree } from './cgroup-tree.js';
import { setChildSubreaper } from './subreaper.js';

export type ContainmentMode = 'cgroup' | 'subreaper';

export type Containment =
  | { readonly mode: 'cgroup'; readonly tree: CgroupTree }
  /** `reason`: why there is no cgroup tree (for the start-up log line). */
  | { readonly mode: 'subreaper'; readonly reason: string };

export interface ContainmentOptions {
  /** The tree's directory name (`emperor-<hash of the runtime directory>`). */
  readonly name: string;
  /** `subreaper`: do not even try cgroups (a flag or environment variable, and tests). */
  readonly force?: ContainmentMode;
}

/**
 * Opens the cgroup tree or, failing that (or forced), makes this process a child subreaper.
 * Throws only when even the subreaper cannot be had (prctl refused: not Linux 3.4+).
 */
export function setUpContainment(options: ContainmentOptions): Containment {
  if (options.force !== 'subreaper') {
    const opened = openCgroupTree({ name: options.name });
    if (opened.ok) return { mode: 'cgroup', tree: opened.tree };
    setChildSubreaper(true);
    return { mode: 'subreaper', reason: opened.reason };
  }
  setChildSubreaper(true);
  return { mode: 'subreaper', reason: 'forced' };
}
