// The emperor's file descriptors, shared by vassals and the control socket. Node raises the soft
// RLIMIT_NOFILE to the hard limit at start; when the hard limit is low (`ulimit -n 64`), vassals
// could take every fd and lock the operator out. So part of the table is kept for the control
// socket: a spawn that would leave less than that free fails with a reason saying so, and the
// control server accepts at most `controlConnections` connections, which fit in that part.
import { readFileSync, readdirSync, statSync } from 'node:fs';

/** fds a spawn may hold at once: three pipes (both ends until the child has its copies) and a pidfd. */
const FDS_PER_SPAWN = 8;
/** Beside its connections, a control request reads /proc and the state file. */
const CONTROL_HEADROOM = 8;
const MAX_CONTROL_CONNECTIONS = 256;
const MIN_CONTROL_CONNECTIONS = 4;

export class FdBudget {
  /** The soft limit on open fds (`ulimit -n`, systemd's `LimitNOFILE=`). */
  readonly limit: number;
  /** At most this many control connections are open at once. */
  readonly controlConnections: number;
  /** fds vassals never take: room for every control connection and its work. */
  readonly reserve: number;
  /** Control connections open now: they use the reserve, not the vassals' part. */
  openControl = 0;

  constructor(limit = readNofileLimit()) {
    this.limit = limit;
    this.controlConnections = Math.max(
      MIN_CONTROL_CONNECTIONS,
      Math.min(MAX_CONTROL_CONNECTIONS, Math.floor(limit / 8)),
    );
    this.reserve = this.controlConnections + CONTROL_HEADROOM;
  }

  /** Why a spawn must not happen now (too few fds left outside the reserve), or undefined. */
  spawnShortage(open = countOpenFds()): string | undefined {
    const used = open - this.openControl;
    if (used + FDS_PER_SPAWN <= this.limit - this.reserve) return undefined;
    return this.explain(open);
  }

  /** The reason a vassal shows when the emperor ran out of fds (EMFILE), or is about to. */
  explain(open = countOpenFds()): string {
    return (
      `too many open files: the emperor has ${open} of its ${this.limit} file descriptors open and keeps ` +
      `${this.reserve} for the control socket; raise its limit (\`LimitNOFILE=\` in its systemd unit, ` +
      '`ulimit -n` in its shell) or run fewer vassals'
    );
  }
}

let shared: FdBudget | undefined;

/** The process's budget: one fd table per process. */
export function fdBudget(): FdBudget {
  return (shared ??= new FdBudget());
}

/**
 * The fewest open files `emperor run` starts with. Loading its modules opens ~60 files at once (the
 * ESM loader reads a module graph in parallel); under `ulimit -n 64` that failed now and then with
 * EMFILE on whichever module came last, before anything could say why.
 */
export const MIN_OPEN_FILES = 128;

/** The soft `Max open files` of /proc/self/limits (1024, the usual default, when unreadable). */
export function readNofileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER;
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}

/** Open fds of this process: Linux >= 6.2 reports it as the size of /proc/self/fd (one stat). */
export function countOpenFds(): number {
  try {
    const size = statSync('/proc/self/fd').size;
    if (size > 0) return size;
    // Older kernels: list it (the listing's own fd is in it).
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return 0;
  }
}
