// A `smart-attach-daemon`'s pidfile: which process it names, and whether that process can be the
// daemon that wrote it. A pid is reused once its process is gone, so a live pid is not enough:
// the process must have started before the pidfile was last written (the daemon writes it once
// it runs) and, when we launched it, after the launch.
import { readFileSync, statSync } from 'node:fs';
import { CLOCK_TICKS_PER_SECOND, readStat } from './process-tree.js';

/** /proc/stat's `btime` is in whole seconds, and our clock and the kernel's are read apart. */
const SLACK_MS = 1500;

let bootMs: number | undefined;

function bootTimeMs(): number {
  bootMs ??= Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))?.[1] ?? 0) * 1000;
  return bootMs;
}

export interface PidfileProcess {
  readonly pid: number;
  /** /proc/PID/stat's start time: with the pid, it names this process (isAlive). */
  readonly startTime: bigint;
}

export type PidfileCheck =
  { readonly ok: true; readonly process: PidfileProcess } | { readonly ok: false; readonly why: string };

/**
 * The live process `path` names, if it can be the daemon that wrote it: not a zombie, started no
 * later than the pidfile was written and, given `launchedAt` (epoch ms of our launch), not before
 * it. Otherwise why not (no file, no pid in it, a dead pid, a reused one).
 */
export function checkPidfile(path: string, launchedAt?: number): PidfileCheck {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
    text = readFileSync(path, 'latin1');
  } catch (err) {
    return { ok: false, why: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = Number(m?.[1]);
  if (!m || !Number.isSafeInteger(pid) || pid <= 1) return { ok: false, why: `${path} holds no pid` };
  const stat = readStat(pid);
  if (stat === undefined || stat.state === 'Z')
    return { ok: false, why: `${path} names pid ${pid}, which is gone` };
  const startedMs = bootTimeMs() + (Number(stat.startTime) * 1000) / CLOCK_TICKS_PER_SECOND;
  if (startedMs > mtimeMs + SLACK_MS)
    return {
      ok: false,
      why: `${path} names pid ${pid}, now another process (started after the pidfile was written)`,
    };
  if (launchedAt !== undefined && startedMs < launchedAt - SLACK_MS)
    return { ok: false, why: `${path} names pid ${pid}, which ran before the daemon was launched` };
  return { ok: true, process: { pid, startTime: stat.startTime } };
}
