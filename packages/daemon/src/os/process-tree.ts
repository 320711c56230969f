// /proc helpers: process identity (pid + start time), process groups and resource usage.
//
// Reads are synchronous on purpose: a /proc file is generated in memory and read in a few
// microseconds, and one scan of 1000 processes costs ~15 ms here, less than the promise and
// thread-pool overhead of doing the same asynchronously (~150 ms).
import { closeSync, openSync, readSync, readdirSync, readFileSync } from 'node:fs';

/** The kernel's USER_HZ, the unit of times in /proc/PID/stat: 100 on every Linux ABI Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** R, S, D, Z, T, ... */
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** utime + stime + cutime + cstime: reaped children stay counted, so the sum never goes back. */
  readonly cpuTicks: number;
  /** Clock ticks after boot; with the pid, it names one process for the lifetime of the boot. */
  readonly startTime: bigint;
  readonly rssPages: number;
}

export interface Usage {
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

// One buffer for every read: /proc/PID/stat is under 1 KiB (comm is at most 64 bytes).
const statBuffer = Buffer.allocUnsafe(4096);

/**
 * Parses /proc/PID/stat. `comm` may hold spaces and parentheses (`(sd-pam)`, `a) b (c`), so the
 * fields are counted from the last `)`, which the kernel always writes right after comm.
 */
export function parseStat(text: string): ProcStat | undefined {
  const bytes = Buffer.from(text, 'latin1');
  return parseStatBytes(bytes, bytes.length);
}

const SPACE = 0x20;

/**
 * `parseStat` on the bytes of a read, without decoding them: a scan parses every process on the
 * host each time a dashboard samples (every 3 s), and the string, its split and ~50 field strings
 * per process were ~1.8 KB of garbage each, 2 MB a scan at 1000 vassals, enough to make V8 grow
 * its young generation for good. This allocates the result, its comm and its start time only.
 */
function parseStatBytes(buf: Buffer, len: number): ProcStat | undefined {
  let open = -1;
  for (let i = 0; i + 1 < len; i++)
    if (buf[i] === SPACE && buf[i + 1] === 0x28) {
      open = i;
      break;
    }
  let close = -1;
  for (let i = len - 1; i >= 0; i--)
    if (buf[i] === 0x29) {
      close = i;
      break;
    }
  if (open <= 0 || close < open) return undefined;
  // Fields 3.. of proc(5): field N starts at starts[N - 3] and ends at ends[N - 3].
  let field = 3;
  let from = close + 2;
  for (let i = from; i <= len && field <= 24; i++) {
    if (i < len && (buf[i] ?? 0) > SPACE) continue; // the last field ends with a newline
    fieldStart[field - 3] = from;
    fieldEnd[field - 3] = i;
    field += 1;
    from = i + 1;
  }
  if (field <= 22) return undefined;
  const num = (n: number): number =>
    n < field ? intAt(buf, fieldStart[n - 3] ?? 0, fieldEnd[n - 3] ?? 0) : NaN;
  const start = num(22);
  if (!(start >= 0) || buf[fieldStart[22 - 3] ?? 0] === 0x2d) return undefined;
  const pid = intAt(buf, 0, open);
  const pgid = num(5);
  if (!Number.isInteger(pid) || !Number.isInteger(pgid)) return undefined;
  const s0 = fieldStart[0] ?? 0;
  const s1 = fieldEnd[0] ?? 0;
  return {
    pid,
    comm: buf.toString('latin1', open + 2, close),
    // One character (always, from the kernel): V8 hands out its cached one-character strings.
    state:
      s1 - s0 === 1 ? String.fromCharCode(buf[s0] ?? 63) : s1 > s0 ? buf.toString('latin1', s0, s1) : '?',
    ppid: num(4),
    pgid,
    sid: num(6),
    cpuTicks: num(14) + num(15) + num(16) + num(17),
    startTime: BigInt(start),
    rssPages: num(24),
  };
}

const fieldStart = new Int32Array(22);
const fieldEnd = new Int32Array(22);

/** The decimal integer in buf[from, to), NaN unless it is one (an optional `-` and digits). */
function intAt(buf: Buffer, from: number, to: number): number {
  let i = from;
  const negative = buf[i] === 0x2d;
  if (negative) i += 1;
  if (i >= to) return NaN;
  let value = 0;
  for (; i < to; i++) {
    const d = (buf[i] ?? 0) - 48;
    if (d < 0 || d > 9) return NaN;
    value = value * 10 + d;
  }
  return negative ? -value : value;
}

/** The parsed /proc/PID/stat, or undefined when the process does not exist (any more). */
export function readStat(pid: number): ProcStat | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, statBuffer, 0, statBuffer.length, 0);
    return parseStatBytes(statBuffer, n);
  } catch {
    // ESRCH: the process exited between open and read.
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Resident pages of a process from /proc/PID/statm (its second field), 0 when it is gone: what
 * the kernel makes cheaper than a whole /proc/PID/stat, for the `max-rss` sampler.
 */
export function readRssPages(pid: number): number {
  if (!Number.isSafeInteger(pid) || pid <= 0) return 0;
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/statm`, 'r');
  } catch {
    return 0;
  }
  try {
    const n = readSync(fd, statBuffer, 0, statBuffer.length, 0);
    const text = statBuffer.toString('latin1', 0, n);
    const start = text.indexOf(' ') + 1;
    const rss = Number(text.slice(start, text.indexOf(' ', start)));
    return Number.isFinite(rss) ? rss : 0;
  } catch {
    return 0; // ESRCH: it exited between open and read
  } finally {
    closeSync(fd);
  }
}

/** Field 22 of /proc/PID/stat, or undefined when there is no such process. */
export function readStartTime(pid: number): bigint | undefined {
  return readStat(pid)?.startTime;
}

/**
 * True while `pid` is still the process that had `startTime`: a reused pid has a later start
 * time, and a zombie has exited already.
 */
export function isAlive(pid: number, startTime: bigint): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z';
}

/** Every process on the host, in one pass over /proc. */
export function scanProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const stat = readStat(Number(name));
    if (stat !== undefined) out.push(stat);
  }
  lastScan = { at: performance.now(), procs: out };
  return out;
}

let lastScan: { readonly at: number; readonly procs: readonly ProcStat[] } | undefined;

/**
 * The last scan if it is at most `maxAgeMs` old (whoever made it: status, history, the `max-rss`
 * sampler), else a new one: a reader that can live with a second-old picture shares the pass.
 */
export function recentProcesses(maxAgeMs: number): readonly ProcStat[] {
  if (lastScan !== undefined && performance.now() - lastScan.at <= maxAgeMs) return lastScan.procs;
  return scanProcesses();
}

/** Pids whose process group is `pgid`, zombies excluded. */
export function processGroupMembers(pgid: number, procs: readonly ProcStat[] = scanProcesses()): number[] {
  return procs.filter((p) => p.pgid === pgid && p.state !== 'Z').map((p) => p.pid);
}

/**
 * Sends `signal` to every process of the group. Returns false when the group is empty (ESRCH);
 * other errors (EPERM) are thrown. Refuses pgid 0 and 1: `kill(0)` is our own group and
 * `kill(-1)` is every process we may signal.
 */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) {
    throw Object.assign(new RangeError(`Expected a process group id above 1, got ${String(pgid)}`), {
      code: 'EMP_BAD_PGID',
    });
  }
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * RSS and CPU time of each root summed over its process tree: its descendants, plus members of
 * its process group that were re-parented away (a daemonized grandchild still counts), plus the
 * trees of `extra[root]` (escapees its containment attributes to it). One /proc scan serves every
 * root. Roots that are gone are missing from the result.
 */
export function sampleUsage(
  rootPids: Iterable<number>,
  procs: readonly ProcStat[] = scanProcesses(),
  extra: ReadonlyMap<number, readonly number[]> = new Map(),
): Map<number, Usage> {
  // Built for every scan (every 3 s while a dashboard is open): no per-root sets or arrays where
  // a root has no other process, which is most of them.
  const byPid = new Map<number, ProcStat>();
  const children = new Map<number, number[]>();
  const groups = new Map<number, number[]>();
  for (const p of procs) {
    byPid.set(p.pid, p);
    pushTo(children, p.ppid, p.pid);
    // A group leader is its own root; only the other members need finding.
    if (p.pgid !== p.pid) pushTo(groups, p.pgid, p.pid);
  }
  const page = pageSize();
  const result = new Map<number, Usage>();
  const seen = new Set<number>();
  const todo: number[] = [];
  for (const root of rootPids) {
    const p = byPid.get(root);
    if (p === undefined) continue;
    const more = extra.get(root);
    if (!children.has(root) && !groups.has(root) && (more === undefined || more.length === 0)) {
      result.set(root, { rssBytes: p.rssPages * page, cpuSeconds: p.cpuTicks / CLOCK_TICKS_PER_SECOND });
      continue;
    }
    seen.clear();
    todo.length = 0;
    todo.push(root, ...(groups.get(root) ?? []), ...(more ?? []));
    let rss = 0;
    let ticks = 0;
    for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const q = byPid.get(pid);
      if (q === undefined) continue;
      rss += q.rssPages;
      ticks += q.cpuTicks;
      for (const c of children.get(pid) ?? []) todo.push(c);
    }
    result.set(root, { rssBytes: rss * page, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND });
  }
  return result;
}

/** Usage of one process tree; prefer `sampleUsage` for many roots. */
export function treeUsage(pid: number): Usage | undefined {
  return sampleUsage([pid]).get(pid);
}

function pushTo(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

let cachedPageSize: number | undefined;

/** The page size, from the AT_PAGESZ entry of our auxiliary vector (Node has no sysconf). */
export function pageSize(): number {
  if (cachedPageSize !== undefined) return cachedPageSize;
  cachedPageSize = 4096;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    // 64-bit little-endian pairs (type, value); AT_PAGESZ is 6.
    for (let off = 0; off + 16 <= auxv.length; off += 16) {
      const type = auxv.readBigUInt64LE(off);
      if (type === 0n) break;
      if (type === 6n) {
        const size = Number(auxv.readBigUInt64LE(off + 8));
        // Guards against a 32-bit or big-endian layout, where the pairs read differently.
        if (size >= 4096 && size <= 1 << 20 && (size & (size - 1)) === 0) cachedPageSize = size;
        break;
      }
    }
  } catch {
    // Keep the common default.
  }
  return cachedPageSize;
}
