// Turns watched directories into the desired set of vassal files. Watcher events are only hints:
// each one schedules a re-listing, and a file counts as changed when its identity
// (device, inode, mtime in ns, size, content hash) does (s6-svscan's scan-and-compare).
import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  lstatSync,
  realpathSync,
  watch as watchDir,
  type BigIntStats,
  type FSWatcher as DirWatcher,
} from 'node:fs';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { vassalNameOf } from '@emperor/config';

/** How long a file's (size, mtime) must hold still, with no event, before it counts as written. */
export const WRITE_SETTLE_MS = 15;
/**
 * A `change` of a file already running is looked at this soon: a `touch` (same bytes) is then
 * applied at once instead of after WRITE_SETTLE_MS, which alone would eat most of the 20 ms
 * touch-to-spawn budget (docs/benchmarks.md). Anything else still waits for the write to settle.
 */
const CHANGE_CHECK_MS = 1;
/**
 * A known file missing this soon after an event for it may be mid-save (rename away, then write):
 * kept until a later scan. Below WRITE_SETTLE_MS, so that the scan a deletion schedules drops it.
 */
const SAVE_GAP_MS = 10;
/** A burst of events (a mass deploy) still gets a scan at least this often. */
const MAX_SCAN_DELAY_MS = 250;
/** Vassal files over this size are rejected by the config reader; no need to read more. */
const MAX_READ_BYTES = 1024 * 1024 + 1;

export interface VassalFile {
  readonly name: string;
  readonly path: string;
  /** `dev:ino:mtimeNs:size:sha256` — a new value means reload. */
  readonly identity: string;
  readonly bytes: Buffer | undefined;
  /** Why the file could not be read, when bytes is undefined. */
  readonly readError: string | undefined;
}

export interface DuplicateFile {
  readonly name: string;
  readonly path: string;
  readonly firstPath: string;
}

export interface Scan {
  readonly files: ReadonlyMap<string, VassalFile>;
  readonly duplicates: readonly DuplicateFile[];
  /** For files (re)read by this scan: when the watcher first reported the change (epoch ms). */
  readonly changedAt: ReadonlyMap<string, number>;
}

export interface WatchTarget {
  readonly dir: string;
  /** Matches a base name, for `--vassals /srv/apps/*.ini`. */
  readonly match: (name: string) => boolean;
}

/** `--vassals DIR_OR_GLOB`: a directory, or a glob of file names inside one directory. */
export function parseWatchTarget(spec: string): WatchTarget {
  const full = resolve(spec);
  if (picomatch.scan(full).isGlob) {
    const dir = dirname(full);
    if (picomatch.scan(dir).isGlob)
      throw new Error(`--vassals ${spec}: the glob may only match file names inside one directory`);
    const isMatch = picomatch(basename(full), { dot: false });
    return { dir, match: isMatch };
  }
  return { dir: full, match: () => true };
}

interface Seen {
  readonly statKey: string;
  readonly at: number;
}

export class DirSource {
  readonly #targets: readonly WatchTarget[];
  readonly #onScan: (scan: Scan) => void;
  readonly #onError: (err: Error) => void;
  #watcher: FSWatcher | undefined;
  /** Files named by an event since their last read: re-read even if stat looks the same. */
  readonly #dirty = new Set<string>();
  /** When the first event since the last read came for each path: the start of the reaction time. */
  readonly #changedAt = new Map<string, number>();
  /** When the last event for each path came: a known file that vanished this recently may be mid-save. */
  readonly #lastEventAt = new Map<string, number>();
  /** The last stat of each path, to tell when a write has settled. */
  readonly #seen = new Map<string, Seen>();
  /** Identity of each path as last read. */
  readonly #known = new Map<string, VassalFile>();
  /** Which path owns each name: the first one seen keeps it. */
  readonly #owner = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #firstPendingAt: number | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** Watched directories given as symlinks (`current -> releases/42`), with what they point at. */
  readonly #links = new Map<string, { real: string | undefined; parent: DirWatcher }>();
  /** Whether each entry of a watched directory is a symlink, for chokidar's `ignored`. */
  readonly #linkMemo = new Map<string, boolean>();

  constructor(targets: readonly WatchTarget[], onScan: (scan: Scan) => void, onError: (err: Error) => void) {
    this.#targets = targets;
    this.#onScan = onScan;
    this.#onError = onError;
  }

  /**
   * chokidar's `ignored` asks this for each entry of a watched directory: only symlinks keep a
   * watch of their own, because an edit of a link's target (elsewhere) reaches no event of the
   * directory. Every other entry is covered by the directory's own inotify watch, whose raw events
   * are the hints above; a watch per file would cost ~16 KB each (docs/benchmarks.md). Memoized,
   * since chokidar asks again for every entry on each directory event; an event for a name forgets it.
   */
  #isLink(path: string): boolean {
    let link = this.#linkMemo.get(path);
    if (link === undefined) {
      try {
        link = lstatSync(path).isSymbolicLink();
      } catch {
        link = false; // gone: the directory's events report what comes next
      }
      this.#linkMemo.set(path, link);
    }
    return link;
  }

  /** Starts watching and resolves after the first full scan. */
  async start(): Promise<void> {
    const dirs = new Set(this.#targets.map((t) => t.dir));
    const watcher = watch([...dirs], {
      depth: 0,
      ignoreInitial: true,
      atomic: false,
      awaitWriteFinish: false,
      persistent: true,
      ignored: (path) => dirs.has(dirname(path)) && !dirs.has(path) && !this.#isLink(path),
    });
    this.#watcher = watcher;
    const hint = (path: string, change = false): void => {
      this.#linkMemo.delete(path);
      if (vassalNameOf(basename(path)) !== undefined) {
        this.#dirty.add(path);
        if (!this.#changedAt.has(path)) this.#changedAt.set(path, Date.now());
      }
      this.#lastEventAt.set(path, Date.now());
      // Renames and deletions of a known file keep the full delay: it bridges an editor's
      // rename-away-then-write gap. A new name is looked at soon: the scan itself holds a file whose
      // mtime is young until it settles (further events while it does wait the full delay), and
      // one already old (`mv`, `cp -p`) starts at once.
      const soon = this.#known.has(path) ? change : !this.#seen.has(path);
      this.schedule(soon ? CHANGE_CHECK_MS : WRITE_SETTLE_MS);
    };
    watcher
      .on('add', (path) => {
        hint(path);
      })
      .on('change', (path) => {
        hint(path, true);
      })
      .on('unlink', (path) => {
        hint(path);
      })
      .on('addDir', (path) => {
        hint(path);
      })
      .on('unlinkDir', (path) => {
        hint(path);
      });
    // chokidar drops `change` for a file replaced by rename twice within ~15 ms (it re-watches the
    // new inode asynchronously), but the raw inotify events of the directory still arrive.
    watcher.on('raw', (event, name, details) => {
      const at = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof at !== 'string' || !name) return;
      hint(basename(at) === name ? at : join(at, name), event === 'change');
    });
    watcher.on('error', (err) => {
      this.#onError(err as Error);
    });
    await new Promise<void>((done) => watcher.once('ready', done));
    this.#watchLinks();
    await this.scanNow();
  }

  /** Schedules a scan; bursts of events coalesce, but never wait more than MAX_SCAN_DELAY_MS. */
  schedule(ms: number): void {
    if (this.#closed) return;
    const now = Date.now();
    this.#firstPendingAt ??= now;
    const latest = this.#firstPendingAt + MAX_SCAN_DELAY_MS;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.scanNow();
      },
      Math.max(0, Math.min(ms, latest - now)),
    );
  }

  /**
   * A deploy that switches a symlinked directory (`ln -sfn releases/43 current`) changes nothing
   * inside the old target, and the inotify watch follows the old inode: watch the link's parent
   * for the link itself, and move the watch when it points elsewhere.
   */
  #watchLinks(): void {
    for (const t of this.#targets) {
      let isLink = false;
      try {
        isLink = lstatSync(t.dir).isSymbolicLink();
      } catch {
        continue;
      }
      if (!isLink || this.#links.has(t.dir)) continue;
      const name = basename(t.dir);
      try {
        const parent = watchDir(dirname(t.dir), { persistent: false }, (_event, changed) => {
          if (changed === name) this.#relink();
        });
        parent.on('error', () => undefined); // the parent went away: SIGHUP still rescans
        this.#links.set(t.dir, { real: realOf(t.dir), parent });
      } catch {
        // an unwatchable parent: SIGHUP still applies a switch
      }
    }
  }

  #relink(): void {
    for (const [dir, link] of this.#links) {
      const real = realOf(dir);
      if (real === link.real) continue;
      link.real = real;
      this.#watcher?.unwatch(dir);
      this.#watcher?.add(dir);
      for (const path of this.#known.keys()) if (path.startsWith(dir + '/')) this.#dirty.add(path);
    }
    this.schedule(WRITE_SETTLE_MS);
  }

  /** SIGHUP: forget what was seen and look at everything again. */
  rescan(): Promise<void> {
    this.#relink();
    for (const path of this.#known.keys()) this.#dirty.add(path);
    return this.scanNow();
  }

  async scanNow(): Promise<void> {
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#firstPendingAt = undefined;
    this.#scanning = this.#scan()
      .catch((err: unknown) => {
        this.#onError(err as Error);
      })
      .finally(() => {
        this.#scanning = undefined;
        if (this.#again) {
          this.#again = false;
          this.schedule(0);
        }
      });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    const listed: { name: string; path: string }[] = [];
    for (const t of this.#targets) {
      let entries: string[];
      try {
        entries = await readdir(t.dir);
      } catch {
        continue; // a missing directory holds no vassals; chokidar reports it when it appears
      }
      entries.sort();
      for (const entry of entries) {
        const name = vassalNameOf(entry);
        if (name !== undefined && t.match(entry)) listed.push({ name, path: join(t.dir, entry) });
      }
    }
    const now = Date.now();
    const present = new Set<string>();
    const read = new Set<string>();
    // Each file answers whether it is still being written.
    const pending = await Promise.all(
      listed.map(async ({ name, path }): Promise<boolean> => {
        let st: BigIntStats;
        try {
          st = await stat(path, { bigint: true });
        } catch {
          return false; // vanished (or a dangling symlink): treated as absent
        }
        if (!st.isFile()) return false;
        present.add(path);
        const statKey = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`;
        const known = this.#known.get(path);
        if (known && !this.#dirty.has(path) && known.identity.startsWith(statKey + ':')) return false;
        // Settled when (size, mtime) held still for WRITE_SETTLE_MS: an mtime that old says so at
        // once; otherwise (a write in progress, or a clock-skewed future mtime) look again later.
        const seen = this.#seen.get(path);
        const mtimeAge = now - Number(st.mtimeNs / 1_000_000n);
        const stillSince = seen?.statKey === statKey ? now - seen.at : 0;
        if (mtimeAge < WRITE_SETTLE_MS && stillSince < WRITE_SETTLE_MS) {
          // A touch, or a save of the same bytes: what is there is the complete known content, so
          // nothing is half-written. (A rewrite still under way that happens to match so far gets
          // its own event when it goes on, hence one more reload: the end state is right.)
          if (known?.bytes !== undefined && known.bytes.length === Number(st.size)) {
            const again = await readIdentity(name, path, statKey, Number(st.size));
            if (hashOf(again.identity) === hashOf(known.identity)) {
              this.#seen.delete(path);
              this.#dirty.delete(path);
              this.#known.set(path, again);
              read.add(path);
              return false;
            }
          }
          if (seen?.statKey !== statKey) this.#seen.set(path, { statKey, at: now });
          return true;
        }
        this.#seen.delete(path);
        this.#dirty.delete(path);
        this.#known.set(path, await readIdentity(name, path, statKey, Number(st.size)));
        read.add(path);
        return false;
      }),
    );
    // A known file missing right after an event for it may be in an editor's rename-away gap, or a
    // scan came early for another file's sake: it counts as gone once it has been still that long.
    let gap = false;
    for (const path of this.#known.keys()) {
      if (present.has(path)) continue;
      if (now - (this.#lastEventAt.get(path) ?? 0) < SAVE_GAP_MS) {
        present.add(path);
        gap = true;
      } else this.#known.delete(path);
    }
    for (const path of this.#lastEventAt.keys()) if (!present.has(path)) this.#lastEventAt.delete(path);
    for (const path of this.#seen.keys()) if (!present.has(path)) this.#seen.delete(path);
    for (const path of this.#dirty) if (!present.has(path)) this.#dirty.delete(path);
    const changedAt = new Map<string, number>();
    for (const path of read) {
      const at = this.#changedAt.get(path);
      if (at !== undefined) changedAt.set(path, at);
      this.#changedAt.delete(path);
    }
    for (const path of this.#changedAt.keys()) if (!present.has(path)) this.#changedAt.delete(path);
    if (gap || pending.includes(true)) this.schedule(WRITE_SETTLE_MS);
    this.#onScan(
      this.#result(
        changedAt,
        listed.map((l) => l.path),
      ),
    );
  }

  /** `order`: the paths as listed (watched directories in command-line order, names sorted). */
  #result(changedAt: ReadonlyMap<string, number>, order: readonly string[]): Scan {
    const files = new Map<string, VassalFile>();
    const duplicates: DuplicateFile[] = [];
    for (const [name, path] of this.#owner) {
      if (!this.#known.has(path)) this.#owner.delete(name);
    }
    // A name nobody owns yet goes to its first file in listing order, not to whichever read
    // finished first: the same files always give the same winner.
    const known = [...this.#known.values()];
    if (known.some((f) => !this.#owner.has(f.name))) {
      const rank = new Map(order.map((path, i) => [path, i]));
      known.sort((a, b) => (rank.get(a.path) ?? Infinity) - (rank.get(b.path) ?? Infinity));
      for (const file of known) if (!this.#owner.has(file.name)) this.#owner.set(file.name, file.path);
    }
    for (const file of this.#known.values()) {
      const owner = this.#owner.get(file.name);
      if (owner === file.path) files.set(file.name, file);
      else if (owner !== undefined) duplicates.push({ name: file.name, path: file.path, firstPath: owner });
    }
    return { files, duplicates, changedAt };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const link of this.#links.values()) link.parent.close();
    await this.#watcher?.close();
  }
}

function realOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

const hashOf = (identity: string): string => identity.slice(identity.lastIndexOf(':') + 1);

async function readIdentity(name: string, path: string, statKey: string, size: number): Promise<VassalFile> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(size, MAX_READ_BYTES));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const bytes = buf.subarray(0, bytesRead);
      const hash = createHash('sha256').update(bytes).digest('hex');
      return { name, path, identity: `${statKey}:${hash}`, bytes, readError: undefined };
    } finally {
      await fh.close();
    }
  } catch (err) {
    return {
      name,
      path,
      identity: `${statKey}:unreadable`,
      bytes: undefined,
      readError: (err as Error).message,
    };
  }
}
