// Turns watched directories into the desired set of vassal files. Watcher events are only hints:
// each one schedules a re-listing, and a file counts as changed when its identity
// (device, inode, mtime in ns, size, content hash) does (s6-svscan's scan-and-compare).
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { constants, realpathSync, statSync, type BigIntStats, type Dirent } from 'node:fs';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { vassalNameOf } from '@emperor/config';
import { PathWatch } from './path-watch.js';
import type { DuplicateDefinition, SourceUpdate, VassalDefinition, VassalSource } from './source.js';

/** How long a file's (size, mtime) must hold still, with no event, before it counts as written. */
export const WRITE_SETTLE_MS = 15;
/**
 * An empty file is what `cat > x.ini` (or any open with O_TRUNC) leaves until its first write,
 * which a loaded machine can delay well past WRITE_SETTLE_MS: it counts as written only when it
 * has stayed empty this long. Anything written in one write(2), as small files are, is never seen
 * half-written otherwise. A file that stays empty is reported as invalid after this delay.
 */
export const EMPTY_SETTLE_MS = 2000;
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

/** A vassal file: its origin is its path. */
export interface VassalFile extends VassalDefinition {
  readonly path: string;
  /** `dev:ino:mtimeNs:size:sha256` (`dev:ino:mtimeNs:size:uid.gid:sha256` in tyrant mode) — a new value means reload. */
  readonly identity: string;
  readonly bytes: Buffer | undefined;
}

/** What one scan of the watched directories defines (changedAt is by path). */
export type Scan = SourceUpdate;

/** What the source tells the operator about the watched paths themselves (logged as warnings). */
export type WatchNote =
  | { readonly event: 'watch-dir-missing'; readonly dir: string }
  | { readonly event: 'watch-dir-found'; readonly dir: string }
  | {
      readonly event: 'dangling-link';
      readonly name: string;
      readonly file: string;
      readonly target: string;
    }
  | { readonly event: 'tyrant-link-ignored'; readonly name: string; readonly file: string };

export interface DirSourceOptions {
  /**
   * Tyrant mode: a file's owner is part of its identity (a chown is a change), and vassal files
   * that are symlinks are not followed (their owner says nothing of who wrote the target).
   */
  readonly tyrant?: boolean;
}

export interface WatchTarget {
  /** As given to `--vassals`. */
  readonly spec: string;
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
    return { spec, dir, match: isMatch };
  }
  return { spec, dir: full, match: () => true };
}

interface Seen {
  readonly statKey: string;
  readonly at: number;
}

/** One watched directory, given by path: what is at that path can change (mv, rm -rf, ln -sfn). */
interface WatchedDir {
  readonly dir: string;
  /** dev:ino of the directory being watched; undefined while the path holds no directory. */
  id: string | undefined;
  watcher: FSWatcher | undefined;
  /** Watches for the path's own entry in its parent, and for every path it leads through when a symlink. */
  readonly presence: Map<string, PathWatch>;
  /** Checks of one directory run one at a time. */
  checking: Promise<void>;
}

export class DirSource implements VassalSource {
  readonly label: string;
  readonly #targets: readonly WatchTarget[];
  readonly #onScan: (scan: Scan) => void;
  readonly #onError: (err: Error) => void;
  readonly #onNote: (note: WatchNote) => void;
  readonly #dirs = new Map<string, WatchedDir>();
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
  /**
   * The targets of symlinked vassal files (every hop of a chain), each watched in its own
   * directory, with the links that lead there: an edit of a target elsewhere, or the appearance
   * of a missing one, raises no event in the watched directory.
   */
  readonly #linkWatches = new Map<string, { readonly watch: PathWatch; links: ReadonlySet<string> }>();
  /** Dangling links already reported, with the missing target: each is logged once. */
  readonly #dangling = new Map<string, string>();
  readonly #tyrant: boolean;
  /** Tyrant mode: symlinked vassal files already reported as not followed. */
  readonly #linksIgnored = new Set<string>();

  constructor(
    targets: readonly WatchTarget[],
    onScan: (scan: Scan) => void,
    onError: (err: Error) => void,
    onNote: (note: WatchNote) => void = () => undefined,
    options: DirSourceOptions = {},
  ) {
    this.#tyrant = options.tyrant === true;
    this.#targets = targets;
    this.label = targets.map((t) => t.spec).join(',');
    this.#onScan = onScan;
    this.#onError = onError;
    this.#onNote = onNote;
  }

  /** Starts watching and resolves after the first full scan. */
  async start(): Promise<void> {
    for (const dir of new Set(this.#targets.map((t) => t.dir)))
      this.#dirs.set(dir, {
        dir,
        id: undefined,
        watcher: undefined,
        presence: new Map(),
        checking: Promise.resolve(),
      });
    await Promise.all([...this.#dirs.values()].map((w) => this.#recheck(w, true)));
    await this.scanNow();
  }

  /** An event names `path`: look again soon. */
  #hint(path: string, change = false): void {
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
  }

  /**
   * chokidar's `ignored` leaves it only the directory itself: its inotify watch sees every change
   * of its entries, and its raw events are the hints; a watch per file would cost ~16 KB each
   * (docs/benchmarks.md). Symlinks' targets are watched by #followLinks.
   */
  async #watchDir(dir: string): Promise<FSWatcher> {
    const watcher = watch(dir, {
      depth: 0,
      ignoreInitial: true,
      atomic: false,
      awaitWriteFinish: false,
      persistent: true,
      ignored: (path) => path !== dir,
    });
    watcher
      .on('add', (path) => {
        this.#hint(path);
      })
      .on('change', (path) => {
        this.#hint(path, true);
      })
      .on('unlink', (path) => {
        this.#hint(path);
      })
      .on('addDir', (path) => {
        this.#hint(path);
      })
      .on('unlinkDir', (path) => {
        this.#hint(path);
      });
    // chokidar drops `change` for a file replaced by rename twice within ~15 ms (it re-watches the
    // new inode asynchronously), but the raw inotify events of the directory still arrive.
    watcher.on('raw', (event, name, details) => {
      const at = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof at !== 'string' || !name) return;
      this.#hint(basename(at) === name ? at : join(at, name), event === 'change');
    });
    watcher.on('error', (err) => {
      this.#onError(err as Error);
    });
    await new Promise<void>((done) => watcher.once('ready', done));
    return watcher;
  }

  #recheck(w: WatchedDir, initial = false): Promise<void> {
    w.checking = w.checking
      .then(() => this.#check(w, initial))
      .catch((err: unknown) => {
        this.#onError(err as Error);
      });
    return w.checking;
  }

  /**
   * What is at a watched path now: the same directory, another one (`mv dir dir.old; mkdir dir`,
   * `rm -rf` and re-create, a symlink switched with `ln -sfn`), or nothing. The inotify watch of a
   * directory follows its inode, not its path: a different directory gets a new watch and a full
   * rescan; a missing one is waited for in its parent (PathWatch).
   */
  async #check(w: WatchedDir, initial: boolean): Promise<void> {
    if (this.#closed) return;
    const found = directoryAt(w.dir);
    const chain = await linkChain(w.dir);
    this.#watchPresence(w, [...(chain?.hops ?? []), ...(found ? [found.real] : [])]);
    if (!initial && found?.id === w.id && (found === undefined || w.watcher)) return;
    const was = w.id;
    w.id = found?.id;
    const old = w.watcher;
    w.watcher = undefined;
    await old?.close();
    if (found) {
      const watcher = await this.#watchDir(w.dir);
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may run during the await
      if (this.#closed) {
        await watcher.close();
        return;
      }
      w.watcher = watcher;
      // Changes made before the new watch was ready raised no event: the rescan below sees them.
      if (!initial && was === undefined) this.#onNote({ event: 'watch-dir-found', dir: w.dir });
    } else if (initial || was !== undefined) this.#onNote({ event: 'watch-dir-missing', dir: w.dir });
    if (initial) return; // start() scans next
    for (const path of this.#known.keys()) if (dirname(path) === w.dir) this.#dirty.add(path);
    this.schedule(0);
  }

  /**
   * Watches the directory's entry in its parent and, when the path is a symlink, each path the link
   * goes through (a release directory re-created under the same name is a different directory).
   */
  #watchPresence(w: WatchedDir, through: readonly string[]): void {
    const wanted = new Set([w.dir, ...through]);
    for (const [path, watch] of w.presence) {
      if (wanted.has(path)) continue;
      watch.close();
      w.presence.delete(path);
    }
    for (const path of wanted) {
      if (w.presence.has(path)) continue;
      const onChange = (): void => {
        void this.#recheck(w);
      };
      w.presence.set(path, new PathWatch(path, onChange, this.#onError));
    }
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

  /** SIGHUP: forget what was seen and look at everything again. */
  /** Vassal files that are symlinks leading nowhere now, as of the last scan. */
  danglingLinks(): { file: string; target: string }[] {
    return [...this.#dangling]
      .map(([file, target]) => ({ file, target }))
      .sort((a, b) => (a.file < b.file ? -1 : 1));
  }

  async rescan(): Promise<void> {
    await Promise.all([...this.#dirs.values()].map((w) => this.#recheck(w)));
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
    const listed: { name: string; path: string; link: boolean }[] = [];
    for (const t of this.#targets) {
      let entries: Dirent[];
      try {
        entries = await readdir(t.dir, { withFileTypes: true });
      } catch {
        continue; // a missing directory holds no vassals; its PathWatch reports it when it appears
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        const name = vassalNameOf(entry.name);
        if (name !== undefined && t.match(entry.name))
          listed.push({ name, path: join(t.dir, entry.name), link: entry.isSymbolicLink() });
      }
    }
    if (this.#tyrant) {
      const links = new Set(listed.filter((l) => l.link).map((l) => l.path));
      for (const l of listed)
        if (l.link && !this.#linksIgnored.has(l.path))
          this.#onNote({ event: 'tyrant-link-ignored', name: l.name, file: l.path });
      for (const path of this.#linksIgnored) if (!links.has(path)) this.#linksIgnored.delete(path);
      for (const path of links) this.#linksIgnored.add(path);
      listed.splice(0, listed.length, ...listed.filter((l) => !l.link));
    }
    const now = Date.now();
    const present = new Set<string>();
    const read = new Set<string>();
    // Each file still being written answers how soon to look at it again.
    const pending = await Promise.all(
      listed.map(async ({ name, path }): Promise<number | undefined> => {
        let st: BigIntStats;
        try {
          // Tyrant: lstat, so that a file replaced by a symlink since the listing is no file.
          st = await (this.#tyrant ? lstat : stat)(path, { bigint: true });
        } catch {
          return undefined; // vanished (or a dangling symlink): treated as absent
        }
        if (!st.isFile()) return undefined;
        present.add(path);
        const owner = this.#tyrant ? { uid: Number(st.uid), gid: Number(st.gid) } : undefined;
        const statKey = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}${owner ? `:${owner.uid}.${owner.gid}` : ''}`;
        const known = this.#known.get(path);
        if (known && !this.#dirty.has(path) && known.identity.startsWith(statKey + ':')) return undefined;
        // Settled when (size, mtime) held still for WRITE_SETTLE_MS: an mtime that old says so at
        // once; otherwise (a write in progress, or a clock-skewed future mtime) look again later.
        const seen = this.#seen.get(path);
        const mtimeAge = now - Number(st.mtimeNs / 1_000_000n);
        const stillSince = seen?.statKey === statKey ? now - seen.at : 0;
        const settle = st.size === 0n ? EMPTY_SETTLE_MS : WRITE_SETTLE_MS;
        if (mtimeAge < settle && stillSince < settle) {
          // A touch, or a save of the same bytes: what is there is the complete known content, so
          // nothing is half-written. (A rewrite still under way that happens to match so far gets
          // its own event when it goes on, hence one more reload: the end state is right.)
          if (known?.bytes !== undefined && known.bytes.length === Number(st.size)) {
            const again = await readIdentity(name, path, statKey, Number(st.size), st.mtimeNs, owner);
            if (again.contentHash === known.contentHash) {
              this.#seen.delete(path);
              this.#dirty.delete(path);
              this.#known.set(path, again);
              read.add(path);
              return undefined;
            }
          }
          if (seen?.statKey !== statKey) this.#seen.set(path, { statKey, at: now });
          return Math.max(WRITE_SETTLE_MS, settle - Math.max(mtimeAge, stillSince));
        }
        this.#seen.delete(path);
        this.#dirty.delete(path);
        this.#known.set(path, await readIdentity(name, path, statKey, Number(st.size), st.mtimeNs, owner));
        read.add(path);
        return undefined;
      }),
    );
    await this.#followLinks(
      listed.filter((l) => l.link),
      present,
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
    const again = pending.filter((ms) => ms !== undefined);
    if (gap) again.push(WRITE_SETTLE_MS);
    if (again.length > 0) this.schedule(Math.min(...again));
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
    const duplicates: DuplicateDefinition[] = [];
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
      else if (owner !== undefined)
        duplicates.push({ name: file.name, origin: file.path, firstOrigin: owner });
    }
    return { vassals: files, duplicates, changedAt };
  }

  /**
   * Watches where each symlinked vassal file leads, and reports a link that leads nowhere once:
   * it starts when its target appears (the target's directory, or the nearest existing one above
   * it, is watched for it).
   */
  async #followLinks(
    links: readonly { name: string; path: string }[],
    present: ReadonlySet<string>,
  ): Promise<void> {
    const wanted = new Map<string, Set<string>>();
    const dangling = new Map<string, string>();
    await Promise.all(
      links.map(async ({ name, path }) => {
        const chain = await linkChain(path);
        if (!chain) return;
        for (const hop of chain.hops) {
          let set = wanted.get(hop);
          if (!set) wanted.set(hop, (set = new Set()));
          set.add(path);
        }
        if (chain.missing === undefined || present.has(path)) return;
        dangling.set(path, chain.missing);
        if (this.#dangling.get(path) !== chain.missing)
          this.#onNote({ event: 'dangling-link', name, file: path, target: chain.missing });
      }),
    );
    this.#dangling.clear();
    for (const [path, target] of dangling) this.#dangling.set(path, target);
    if (this.#closed) return;
    for (const [target, entry] of this.#linkWatches) {
      if (wanted.has(target)) continue;
      entry.watch.close();
      this.#linkWatches.delete(target);
    }
    for (const [target, paths] of wanted) {
      const entry = this.#linkWatches.get(target);
      if (entry) {
        entry.links = paths;
        continue;
      }
      const fresh = {
        watch: new PathWatch(
          target,
          () => {
            for (const link of fresh.links) this.#hint(link, true);
          },
          this.#onError,
        ),
        links: paths as ReadonlySet<string>,
      };
      this.#linkWatches.set(target, fresh);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const { watch } of this.#linkWatches.values()) watch.close();
    this.#linkWatches.clear();
    const closing: Promise<void>[] = [];
    for (const w of this.#dirs.values()) {
      for (const watch of w.presence.values()) watch.close();
      w.presence.clear();
      closing.push(w.checking.then(() => w.watcher?.close()));
    }
    await Promise.all(closing);
  }
}

/** The directory at `path` (following symlinks), or undefined when there is none. */
function directoryAt(path: string): { id: string; real: string } | undefined {
  try {
    const st = statSync(path);
    if (!st.isDirectory()) return undefined;
    return { id: `${st.dev}:${st.ino}`, real: realpathSync(path) };
  } catch {
    return undefined;
  }
}

/** Every path a symlink chain goes through, and the first one missing (a dangling link). */
async function linkChain(path: string): Promise<{ hops: string[]; missing: string | undefined } | undefined> {
  const hops: string[] = [];
  let at = path;
  // 40: the kernel's own limit of links followed in one lookup (ELOOP beyond it).
  for (let i = 0; i < 40; i++) {
    let to: string;
    try {
      to = resolve(dirname(at), await readlink(at));
    } catch {
      return i === 0 ? undefined : { hops, missing: undefined }; // gone, or no link after all
    }
    hops.push(to);
    try {
      if (!(await lstat(to)).isSymbolicLink()) return { hops, missing: undefined };
    } catch {
      return { hops, missing: to };
    }
    at = to;
  }
  return { hops, missing: undefined };
}

async function readIdentity(
  name: string,
  path: string,
  statKey: string,
  size: number,
  modifiedNs: bigint,
  owner: VassalFile['owner'],
): Promise<VassalFile> {
  const common = { name, path, origin: path, size, modifiedNs, ...(owner === undefined ? {} : { owner }) };
  try {
    // Tyrant mode never follows a symlink, even one put in place since the lstat.
    const fh = await open(path, owner === undefined ? 'r' : constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(Math.min(size, MAX_READ_BYTES));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const bytes = buf.subarray(0, bytesRead);
      const hash = createHash('sha256').update(bytes).digest('hex');
      return { ...common, identity: `${statKey}:${hash}`, contentHash: hash, bytes, readError: undefined };
    } finally {
      await fh.close();
    }
  } catch (err) {
    return {
      ...common,
      identity: `${statKey}:unreadable`,
      contentHash: `unreadable:${statKey}`,
      bytes: undefined,
      readError: (err as Error).message,
    };
  }
}
