// Containment where no cgroup can be had: the emperor is a child subreaper, so a process that
// leaves its instance's process group (setsid, a double fork, `nohup cmd &`) is re-parented to
// the emperor when its parent dies, instead of to init. Such an orphan is attributed by the
// environment it was started with (EMPEROR_VASSAL, EMPEROR_INSTANCE, EMPEROR_GENERATION, which
// every instance gets and its descendants inherit), read from /proc/PID/environ.
//
// What still escapes in this mode: a process that clears or rewrites those variables before it
// forks (its orphans cannot be attributed, only counted as the emperor's), one whose parent is
// still alive and outside the process group (found only when that parent dies), and one that is
// made a child of another subreaper (a nested `systemd --user`, a container runtime).
import { readFileSync, readdirSync } from 'node:fs';
import { isChildSubreaper, reapPid, setChildSubreaper } from '@emperor/native';
import { readStat } from '../process-tree.js';

export { isChildSubreaper, setChildSubreaper };

export interface Orphan {
  readonly pid: number;
  readonly startTime: bigint;
  readonly pgid: number;
  readonly comm: string;
  /** From EMPEROR_VASSAL; undefined when the process does not carry it (not attributable). */
  readonly vassal: string | undefined;
  readonly generation: number | undefined;
  readonly instance: number | undefined;
  /** From EMPEROR_TURN: a recycling replacement's turn (undefined for the first of its slot). */
  readonly turn: number | undefined;
  /** From EMPEROR_ATTACH: a side daemon's index (it has no generation or instance). */
  readonly attach: number | undefined;
  /** A zombie: it only needs reaping. */
  readonly exited: boolean;
}

const TAGS = [
  'EMPEROR_VASSAL',
  'EMPEROR_GENERATION',
  'EMPEROR_INSTANCE',
  'EMPEROR_TURN',
  'EMPEROR_ATTACH',
] as const;
export type Tags = Partial<Record<(typeof TAGS)[number], string>>;

/** The EMPEROR_* variables a process was started with ({} when unreadable or a zombie). */
export function readTags(pid: number): Tags {
  const tags: Tags = {};
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return tags;
  }
  for (const entry of environ.split('\0')) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq) as (typeof TAGS)[number];
    if (eq > 0 && TAGS.includes(name)) tags[name] = entry.slice(eq + 1);
  }
  return tags;
}

/**
 * The emperor's children that it did not spawn: every child of this process (`ownChildren`, not
 * a scan of the host) whose pid is not in `spawned` (the instances the native spawn started, and
 * any child_process children). `tagsOf` reads a live orphan's EMPEROR_* variables (a caller may
 * cache them by pid and start time).
 */
export function listOrphans(
  spawned: { has(pid: number): boolean },
  tagsOf: (pid: number, startTime: bigint) => Tags = (pid) => readTags(pid),
): Orphan[] {
  const out: Orphan[] = [];
  for (const pid of ownChildren()) {
    if (spawned.has(pid)) continue;
    const p = readStat(pid);
    if (p === undefined) continue;
    const exited = p.state === 'Z';
    const tags = exited ? {} : tagsOf(pid, p.startTime);
    out.push({
      pid,
      startTime: p.startTime,
      pgid: p.pgid,
      comm: p.comm,
      vassal: tags.EMPEROR_VASSAL,
      generation: toInt(tags.EMPEROR_GENERATION),
      instance: toInt(tags.EMPEROR_INSTANCE),
      turn: toInt(tags.EMPEROR_TURN),
      attach: toInt(tags.EMPEROR_ATTACH),
      exited,
    });
  }
  return out;
}

/**
 * Reaps the orphans among `orphans` that have exited. Only pids listed by `listOrphans` may be
 * passed: reaping a pid that libuv or a pidfd waits for would steal its exit status.
 */
export function reapOrphans(orphans: readonly Orphan[]): number[] {
  const reaped: number[] = [];
  for (const o of orphans) {
    if (reapPid(o.pid)) reaped.push(o.pid);
  }
  return reaped;
}

/**
 * This process's children, from /proc/self/task/TID/children of every thread: an orphan is
 * re-parented to any live thread of its subreaper. Costs one small read per thread, not a scan
 * of every process on the host.
 */
export function ownChildren(): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const pid of readFileSync(`/proc/self/task/${tid}/children`, 'latin1').split(/\s+/)) {
        if (pid !== '') out.push(Number(pid));
      }
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

function toInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}
