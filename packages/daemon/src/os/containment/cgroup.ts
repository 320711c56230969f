// One cgroup (v2) directory: create, kill everything in it, wait until it is empty, remove it,
// read what it has used. Small writes and reads are synchronous, as in process-tree.ts: cgroup
// files are generated in memory and answer in microseconds.
//
// Facts this relies on (checked by test/cgroup.test.ts on the running kernel):
// - `cgroup.events` says `populated 0` once no live process is left in the cgroup or below it;
//   a zombie does not count, so an unreaped main process does not keep it populated.
// - The kernel raises an inotify IN_MODIFY on `cgroup.events` when a line changes, which Node's
//   fs.watch reports as `change`: emptiness is seen when it happens, not polled for.
// - `cgroup.kill` (Linux 5.14) SIGKILLs every process of the subtree in one write, forks in
//   flight included. Before that, `cgroup.freeze` (5.2) stops the subtree so that nothing forks
//   while each pid of `cgroup.procs` gets SIGKILL, which a frozen process still dies of.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type KillMethod = 'kill' | 'freeze';

export interface CgroupUsage {
  /** `usage_usec` of cpu.stat: user + system time of every process that ever ran here. */
  readonly cpuSeconds: number;
  /** `memory.current`: only where the memory controller is enabled for this cgroup. */
  readonly memoryBytes: number | undefined;
}

/** Creates the cgroup directory (and missing parents); an existing one is reused. */
export function createCgroup(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

/** `populated` of cgroup.events; false when the cgroup is gone. */
export function isPopulated(dir: string): boolean {
  const events = readEvents(dir);
  return events?.get('populated') === '1';
}

function readEvents(dir: string): Map<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, 'cgroup.events'), 'utf8');
  } catch {
    return undefined;
  }
  return new Map(text.split('\n').map((l) => l.split(' ') as [string, string]));
}

/** The pids in this cgroup and every cgroup below it. */
export function cgroupPids(dir: string): number[] {
  const out: number[] = [];
  for (const d of subtree(dir)) {
    try {
      for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line !== '') out.push(Number(line));
      }
    } catch {
      // Removed meanwhile: nothing left in it.
    }
  }
  return out;
}

/** `dir` and its descendant cgroups, parents before children. */
function subtree(dir: string): string[] {
  const out = [dir];
  for (let i = 0; i < out.length; i++) {
    let entries;
    try {
      entries = readdirSync(out[i] as string, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) if (e.isDirectory()) out.push(join(out[i] as string, e.name));
  }
  return out;
}

/** The method `killCgroup` uses when not told: `cgroup.kill` where the kernel has it. */
export function defaultKillMethod(dir: string): KillMethod {
  return existsSync(join(dir, 'cgroup.kill')) ? 'kill' : 'freeze';
}

/**
 * SIGKILL to every process of the cgroup and below, so that none can fork away meanwhile.
 * Resolves once the signals are sent (not once they are dead: see `waitEmpty`). A cgroup that is
 * gone already is not an error. `signal` aborts the freeze fallback's wait (the cgroup is thawed).
 */
export async function killCgroup(
  dir: string,
  method: KillMethod = defaultKillMethod(dir),
  signal?: AbortSignal,
): Promise<void> {
  if (method === 'kill') {
    writeIfPresent(join(dir, 'cgroup.kill'), '1');
    return;
  }
  if (!writeIfPresent(join(dir, 'cgroup.freeze'), '1')) return;
  try {
    // Freezing is not instant: a process in a system call stops on its way out.
    // A process in uninterruptible sleep (D) delays it: `signal` bounds the wait.
    await waitForEvent(dir, (e) => e.get('frozen') === '1' || e.get('populated') === '0', signal);
    for (const pid of cgroupPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
  } finally {
    // Thawed, the killed processes run their exit; anything frozen would stay populated forever.
    writeIfPresent(join(dir, 'cgroup.freeze'), '0');
  }
}

/** Resolves once `populated 0`, seen through inotify on cgroup.events (or the cgroup is gone). */
export function waitEmpty(dir: string, signal?: AbortSignal): Promise<void> {
  return waitForEvent(dir, (e) => e.get('populated') === '0', signal);
}

/**
 * Waits until `test` holds for cgroup.events. The watch is set before the first read, so a
 * change between the two cannot be missed; a missing file (the cgroup removed) ends the wait.
 */
function waitForEvent(
  dir: string,
  test: (events: Map<string, string>) => boolean,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const path = join(dir, 'cgroup.events');
    let watcher: ReturnType<typeof watch>;
    const finish = (error?: Error): void => {
      watcher.close();
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const check = (): void => {
      const events = readEvents(dir);
      if (events === undefined || test(events)) finish();
    };
    const onAbort = (): void => {
      const reason: unknown = signal?.reason;
      finish(reason instanceof Error ? reason : new Error(`gave up waiting for ${dir} to be empty`));
    };
    try {
      watcher = watch(path, { persistent: true }, check);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') resolve();
      else reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    // The watch of a removed file errors or stops: either way the cgroup is empty.
    watcher.on('error', () => {
      finish();
    });
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort);
    check();
  });
}

/**
 * Removes the cgroup and the empty cgroups below it (children first). False when one is still
 * populated (EBUSY) and was left in place; a cgroup already gone counts as removed.
 */
export function removeCgroup(dir: string): boolean {
  let removed = true;
  for (const d of subtree(dir).reverse()) {
    try {
      rmdirSync(d);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') removed = false;
    }
  }
  return removed;
}

/**
 * CPU and memory of the whole subtree, escapees included: one or two small reads. `memory`:
 * whether memory.current exists here (the memory controller is enabled for this cgroup), so a
 * host without it pays no failed open per vassal.
 */
export function cgroupUsage(dir: string, memory: boolean): CgroupUsage | undefined {
  let cpuSeconds: number;
  let memoryBytes: number | undefined;
  try {
    const usec = /^usage_usec (\d+)$/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1];
    if (usec === undefined) return undefined;
    cpuSeconds = Number(usec) / 1e6;
    if (memory) memoryBytes = Number(readFileSync(join(dir, 'memory.current'), 'utf8'));
  } catch {
    return undefined; // removed meanwhile
  }
  return { cpuSeconds, memoryBytes };
}

/**
 * Enables in `dir`'s children whichever of `wanted` its parent gives it (cgroup.controllers).
 * Best effort: a cgroup with processes of its own cannot (EBUSY, "no internal processes").
 * Returns the controllers now enabled for the children.
 */
export function enableControllers(dir: string, wanted: readonly string[]): string[] {
  let available: string[];
  try {
    available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
  const take = wanted.filter((c) => available.includes(c));
  for (const c of take) {
    try {
      writeFileSync(join(dir, 'cgroup.subtree_control'), `+${c}`);
    } catch {
      // EBUSY (processes in dir) or EACCES: accounting falls back to /proc for this one.
    }
  }
  try {
    return readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** Writes `value` to a cgroup file; false when the file (or the cgroup) does not exist. */
function writeIfPresent(path: string, value: string): boolean {
  try {
    writeFileSync(path, value);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
