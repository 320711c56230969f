// The state file: the process groups of running instances, so that the next emperor can remove
// what a killed one left behind (SPEC §4) without ever killing a process that is not ours.
//
// Rule for what counts as ours (cleanupLeftovers):
// - the file must come from this boot (boot_id), since start times count from boot;
// - if the emperor that wrote it still runs (same pid and start time), nothing is touched;
// - a group whose leader (pid = pgid) is alive with the recorded start time is ours: Linux never
//   hands out a pid while a process group of that number exists, so every member is ours, and
//   the whole group gets SIGKILL;
// - a leader alive with another start time means the number was freed and reused: not ours;
// - with the leader gone, a member that still carries the pgid is killed only if it started no
//   earlier than the leader and its environment names the vassal (`EMPEROR_VASSAL`, which every
//   instance gets); a member without that evidence is left alone and reported;
// - any other process whose environment says that emperor started it (`EMPEROR_ID=<pid>.<start
//   time>`, which every instance gets and its descendants inherit) is ours too: that is how a
//   daemon that left its group (setsid) is found when no cgroup holds it.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { killGroup, readStat, scanProcesses, type ProcStat } from './process-tree.js';
import { readTags } from './containment/subreaper.js';

const FORMAT_VERSION = 1;
const RETRY_MS = 1000;

export interface GroupRecord {
  /** Process group id, which is the pid of its leader, the instance's main process. */
  readonly pgid: number;
  /** The leader's start time (field 22 of /proc/PID/stat). */
  readonly startTime: bigint;
  readonly vassal: string;
  readonly instance: number;
  readonly generation: number;
}

export interface StateFileOptions {
  readonly path: string;
  readonly logger?: Logger;
  /** Changes within this window are written together. */
  readonly debounceMs?: number;
}

export interface StateFile {
  readonly path: string;
  /** Records a group; written within `debounceMs`. */
  add(record: GroupRecord): void;
  /** Forgets a group (its instance exited and the group was killed). */
  remove(pgid: number): void;
  records(): GroupRecord[];
  /** Resolves once the current records are on disk. Never rejects. */
  flush(): Promise<void>;
  /** Writes the last state; removes the file when no group is left. Idempotent; never rejects. */
  close(): Promise<void>;
}

interface FileContent {
  version: number;
  bootId: string;
  emperor: { pid: number; startTime: string };
  groups: { pgid: number; startTime: string; vassal: string; instance: number; generation: number }[];
}

export function openStateFile(options: StateFileOptions): StateFile {
  return new StateFileImpl(options);
}

class StateFileImpl implements StateFile {
  readonly path: string;
  readonly #logger: Logger | undefined;
  readonly #debounceMs: number;
  readonly #groups = new Map<number, GroupRecord>();
  readonly #emperor = { pid: process.pid, startTime: String(readStat(process.pid)?.startTime ?? 0n) };
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #failing = false;
  #closed: Promise<void> | undefined;

  constructor(opts: StateFileOptions) {
    this.path = opts.path;
    this.#logger = opts.logger;
    this.#debounceMs = opts.debounceMs ?? 20;
  }

  add(record: GroupRecord): void {
    this.#groups.set(record.pgid, record);
    this.#changed();
  }

  remove(pgid: number): void {
    if (this.#groups.delete(pgid)) this.#changed();
  }

  records(): GroupRecord[] {
    return [...this.#groups.values()];
  }

  async flush(): Promise<void> {
    await this.#writing;
    // One attempt: when the disk fails, the retry timer keeps trying, flush does not hang.
    if (this.#dirty) {
      this.#startWrite();
      await this.#writing;
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#groups.size > 0) return this.flush();
      clearTimeout(this.#timer);
      this.#dirty = false;
      await this.#writing;
      await unlink(this.path).catch(() => undefined);
    })();
    return this.#closed;
  }

  #changed(): void {
    if (this.#closed !== undefined) return;
    this.#dirty = true;
    // Coalesce: one write per window however many spawns and exits happen in it.
    if (this.#timer === undefined && this.#writing === undefined) {
      this.#timer = setTimeout(() => {
        this.#startWrite();
      }, this.#debounceMs);
    }
  }

  #startWrite(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dirty = false;
    this.#writing = this.#write().finally(() => {
      this.#writing = undefined;
      if (this.#dirty && this.#closed === undefined) {
        this.#timer = setTimeout(
          () => {
            this.#startWrite();
          },
          this.#failing ? RETRY_MS : this.#debounceMs,
        );
      }
    });
  }

  async #write(): Promise<void> {
    const content: FileContent = {
      version: FORMAT_VERSION,
      bootId: bootId(),
      emperor: this.#emperor,
      groups: [...this.#groups.values()].map((g) => ({ ...g, startTime: String(g.startTime) })),
    };
    // Write then rename: a reader (or the next emperor) sees the old file or the new, never half.
    // No fsync: the file matters only while processes run, and a power loss leaves none.
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFile(tmp, JSON.stringify(content) + '\n', { mode: 0o600 });
      await rename(tmp, this.path);
      this.#failing = false;
    } catch (err) {
      this.#dirty = true;
      if (!this.#failing) {
        this.#failing = true;
        this.#logger?.error({ event: 'state-file-error', path: this.path, err }, 'cannot write state file');
      }
    }
  }
}

export interface LeftoverKill {
  readonly pgid: number;
  readonly vassal: string;
  readonly instance: number;
  readonly generation: number;
  /** Processes that got SIGKILL. */
  readonly pids: number[];
  /**
   * `leader`: the leader still ran; `environment`: leader gone, members named the vassal;
   * `emperor-id`: outside any recorded group, started by that emperor (EMPEROR_ID).
   */
  readonly evidence: 'leader' | 'environment' | 'emperor-id';
}

export interface LeftoverSkip {
  readonly pgid: number;
  readonly vassal: string;
  readonly pids: number[];
  readonly reason: string;
}

export interface CleanupReport {
  readonly killed: LeftoverKill[];
  readonly skipped: LeftoverSkip[];
  /** Killed processes still present after `waitMs` (e.g. stuck in uninterruptible sleep). */
  readonly stillAlive: number[];
}

export interface CleanupOptions {
  /** How long to wait for killed processes to disappear (they may hold ports). Default 2000. */
  readonly waitMs?: number;
}

/**
 * Kills the leftovers recorded by a previous emperor, then removes its state file. Call it before
 * opening the new state file. Throws `EMP_STATE_FILE_IN_USE` when the emperor that wrote the file
 * is still running.
 */
export async function cleanupLeftovers(
  path: string,
  logger?: Logger,
  options: CleanupOptions = {},
): Promise<CleanupReport> {
  const report: CleanupReport = { killed: [], skipped: [], stillAlive: [] };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger?.error({ event: 'state-file-error', path, err }, 'cannot read state file');
    }
    return report;
  }
  const content = parseContent(text);
  if (content === undefined) {
    logger?.warn({ event: 'state-file-invalid', path }, 'state file unreadable, ignored');
    await unlink(path).catch(() => undefined);
    return report;
  }
  const owner = readStat(content.emperor.pid);
  if (
    content.emperor.pid !== process.pid &&
    content.bootId === bootId() &&
    owner !== undefined &&
    owner.state !== 'Z' && // killed, not yet reaped by its parent: its vassals are leftovers
    String(owner.startTime) === content.emperor.startTime
  ) {
    throw Object.assign(
      new Error(`Another emperor (pid ${content.emperor.pid}) is running with the state file ${path}`),
      { code: 'EMP_STATE_FILE_IN_USE' },
    );
  }
  if (content.bootId !== bootId()) {
    // Start times from another boot identify nothing; those processes died with that boot.
    await unlink(path).catch(() => undefined);
    return report;
  }

  const procs = scanProcesses();
  const ownGroup = readStat(process.pid)?.pgid;
  for (const g of content.groups) {
    const rec = { pgid: g.pgid, vassal: g.vassal, instance: g.instance, generation: g.generation };
    if (g.pgid <= 1 || g.pgid === process.pid || g.pgid === ownGroup) continue;
    const startTime = BigInt(g.startTime);
    const members = procs.filter((p) => p.pgid === g.pgid && p.state !== 'Z');
    const leader = procs.find((p) => p.pid === g.pgid);
    if (leader !== undefined && leader.startTime === startTime) {
      if (members.length === 0) continue;
      killGroup(g.pgid, 'SIGKILL');
      report.killed.push({ ...rec, pids: members.map((p) => p.pid), evidence: 'leader' });
      continue;
    }
    if (members.length === 0) continue;
    if (leader !== undefined) {
      report.skipped.push({ ...rec, pids: members.map((p) => p.pid), reason: 'pid reused' });
      continue;
    }
    const ours = members.filter((p) => p.startTime >= startTime && namesVassal(p, g.vassal));
    const others = members.filter((p) => !ours.includes(p));
    const killed = ours.filter((p) => killPid(p));
    if (killed.length > 0) {
      report.killed.push({ ...rec, pids: killed.map((p) => p.pid), evidence: 'environment' });
    }
    if (others.length > 0) {
      report.skipped.push({ ...rec, pids: others.map((p) => p.pid), reason: 'no evidence' });
    }
  }

  const byId = `EMPEROR_ID=${content.emperor.pid}.${content.emperor.startTime}`;
  const seen = new Set([...report.killed, ...report.skipped].flatMap((k) => k.pids));
  const emperorStart = BigInt(content.emperor.startTime);
  for (const p of procs) {
    if (p.state === 'Z' || p.pid === process.pid || seen.has(p.pid) || p.startTime < emperorStart) continue;
    if (!carries(p, byId) || !killPid(p)) continue;
    const tags = readTags(p.pid);
    report.killed.push({
      pgid: p.pgid,
      vassal: tags.EMPEROR_VASSAL ?? '?',
      instance: Number(tags.EMPEROR_INSTANCE ?? -1),
      generation: Number(tags.EMPEROR_GENERATION ?? -1),
      pids: [p.pid],
      evidence: 'emperor-id',
    });
  }

  const killedPids = new Set(report.killed.flatMap((k) => k.pids));
  const victims = procs.filter((p) => killedPids.has(p.pid));
  report.stillAlive.push(...(await waitGone(victims, options.waitMs ?? 2000)));
  for (const k of report.killed) {
    logger?.warn({ event: 'leftover-killed', ...k }, 'killed leftover of a previous emperor');
  }
  for (const s of report.skipped) {
    logger?.warn({ event: 'leftover-skipped', ...s }, 'left a process alone: not provably ours');
  }
  await unlink(path).catch(() => undefined);
  return report;
}

function parseContent(text: string): FileContent | undefined {
  try {
    const c = JSON.parse(text) as Partial<FileContent>;
    if (c.version !== FORMAT_VERSION || typeof c.bootId !== 'string' || !Array.isArray(c.groups)) return;
    if (typeof c.emperor?.pid !== 'number' || typeof c.emperor.startTime !== 'string') return;
    const ok = c.groups.every(
      (g) =>
        Number.isSafeInteger(g.pgid) &&
        /^\d+$/.test(g.startTime) &&
        typeof g.vassal === 'string' &&
        typeof g.instance === 'number' &&
        typeof g.generation === 'number',
    );
    return ok ? (c as FileContent) : undefined;
  } catch {
    return undefined;
  }
}

/** True when the process was started with `EMPEROR_VASSAL=<vassal>` (unreadable: false). */
function namesVassal(p: ProcStat, vassal: string): boolean {
  return carries(p, `EMPEROR_VASSAL=${vassal}`);
}

/** True when the process was started with the variable `entry` (`NAME=value`; unreadable: false). */
function carries(p: ProcStat, entry: string): boolean {
  try {
    const env = readFileSync(`/proc/${p.pid}/environ`);
    const needle = Buffer.from(`${entry}\0`);
    for (let i = env.indexOf(needle); i !== -1; i = env.indexOf(needle, i + 1)) {
      if (i === 0 || env[i - 1] === 0) return true;
    }
  } catch {
    // EACCES (another user's process) or gone: no evidence.
  }
  return false;
}

/** SIGKILL to one pid, after checking once more that it is the process we examined. */
function killPid(p: ProcStat): boolean {
  if (readStat(p.pid)?.startTime !== p.startTime) return false;
  try {
    process.kill(p.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

async function waitGone(procs: ProcStat[], waitMs: number): Promise<number[]> {
  const deadline = Date.now() + waitMs;
  let left = procs;
  for (;;) {
    left = left.filter((p) => {
      const s = readStat(p.pid);
      return s !== undefined && s.startTime === p.startTime && s.state !== 'Z';
    });
    if (left.length === 0 || Date.now() >= deadline) return left.map((p) => p.pid);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let cachedBootId: string | undefined;

function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}
