// Watches for a path that may not exist (yet): a watched directory that was removed, a symlink's
// missing target. inotify cannot watch what is not there, so the nearest existing ancestor is
// watched for the next name on the way, and the watch moves down (or up) as directories come and go.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, relative, sep } from 'node:path';

/**
 * How soon a watch that could not be set up is tried again. Only then is anything polled: inotify
 * refused (ENOSPC: fs.inotify.max_user_watches reached; EACCES: an ancestor we may not read).
 */
export const REARM_RETRY_MS = 2000;

type Listener = () => void;

/** One inotify watch per directory, shared by every PathWatch waiting below it. */
interface DirEntry {
  readonly watcher: FSWatcher;
  /** dev:ino of the directory when the watch was made: a re-created one needs a new watch. */
  readonly id: string;
  readonly byName: Map<string, Set<Listener>>;
}

const dirs = new Map<string, DirEntry>();

interface Subscription {
  readonly entry: DirEntry;
  readonly unsubscribe: () => void;
}

function subscribe(dir: string, id: string, name: string, listener: Listener): Subscription {
  let entry = dirs.get(dir);
  if (entry && entry.id !== id) {
    notifyAll(dir); // the directory was re-created: every watch of the old one moves
    entry = dirs.get(dir);
    if (entry && entry.id !== id) {
      drop(dir, entry);
      entry = undefined;
    }
  }
  if (!entry) {
    const byName = new Map<string, Set<Listener>>();
    const self = basename(dir);
    const watcher = watch(dir, { persistent: false }, (_event, changed) => {
      // The directory itself moved or was removed (inotify names it by its own base name), or
      // the kernel dropped events: everyone below re-arms.
      if (changed === null || changed === self) notifyAll(dir);
      else for (const l of [...(byName.get(changed) ?? [])]) l();
    });
    watcher.on('error', () => {
      notifyAll(dir);
    });
    entry = { watcher, id, byName };
    dirs.set(dir, entry);
  }
  let set = entry.byName.get(name);
  if (!set) entry.byName.set(name, (set = new Set()));
  set.add(listener);
  const owner = entry;
  return {
    entry,
    unsubscribe: () => {
      set.delete(listener);
      if (set.size === 0) owner.byName.delete(name);
      if (owner.byName.size === 0 && dirs.get(dir) === owner) drop(dir, owner);
    },
  };
}

function drop(dir: string, entry: DirEntry): void {
  dirs.delete(dir);
  entry.watcher.close();
}

function notifyAll(dir: string): void {
  const entry = dirs.get(dir);
  if (!entry) return;
  // The watch may be stale (its directory gone or moved): drop it, so that re-arming makes a new one.
  drop(dir, entry);
  for (const set of [...entry.byName.values()]) for (const l of [...set]) l();
}

/** The nearest existing directory above `path` (not `path` itself), with its dev:ino. */
function nearestDir(path: string): { dir: string; id: string } | undefined {
  let dir = dirname(path);
  for (;;) {
    try {
      const st = statSync(dir);
      if (st.isDirectory()) return { dir, id: `${st.dev}:${st.ino}` };
    } catch {
      // missing, or not a directory: look further up
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * Calls `onChange` whenever the entry `path` may have appeared, disappeared, been replaced or
 * written to, as seen from its parent directory (or, while that is missing, from the nearest
 * ancestor that exists). The callback is a hint: the caller stats `path` to see what happened.
 */
export class PathWatch {
  readonly path: string;
  readonly #onChange: () => void;
  readonly #onError: (err: Error) => void;
  #at: string | undefined;
  #sub: Subscription | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** A failure to watch is reported once, not at every retry. */
  #failed = false;
  #closed = false;

  constructor(path: string, onChange: () => void, onError: (err: Error) => void) {
    this.path = path;
    this.#onChange = onChange;
    this.#onError = onError;
    this.#arm();
  }

  #arm(): void {
    // A directory made on the way between the look and the watch raised no event this watch can
    // see: look again until both agree (a bound, in case someone creates and removes in a loop).
    for (let i = 0; i < 64 && !this.#closed; i++) {
      const near = nearestDir(this.path);
      const sub = this.#sub;
      // Subscribed to a live watch of this very directory: done.
      if (
        near &&
        sub &&
        near.dir === this.#at &&
        sub.entry.id === near.id &&
        dirs.get(near.dir) === sub.entry
      )
        return;
      sub?.unsubscribe();
      this.#sub = undefined;
      this.#at = near?.dir;
      if (!near) return; // not even `/`: nothing to watch
      const next = relative(near.dir, this.path).split(sep)[0] ?? '';
      try {
        this.#sub = subscribe(near.dir, near.id, next, this.#changed);
        this.#failed = false;
      } catch (err) {
        if (!this.#failed) this.#onError(err as Error);
        this.#failed = true;
        clearTimeout(this.#retry);
        this.#retry = setTimeout(this.#changed, REARM_RETRY_MS);
        this.#retry.unref();
        return;
      }
    }
  }

  readonly #changed = (): void => {
    if (this.#closed) return;
    // A directory on the way appeared or went: move the watch before anyone looks.
    this.#arm();
    this.#onChange();
  };

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }
}
