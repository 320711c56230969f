// `touch-reload = PATH`: a new mtime or content of PATH reloads its vassal, as uWSGI's does; a
// PATH that does not exist yet is waited for, and reloads when it appears. Watched through
// PathWatch: one inotify watch per directory, shared by every path below it (and by the vassal
// directories' own waits), never one per path. A symlinked directory on the way (a deploy's
// `current -> releases/N`) is watched too, so that switching it is seen as a change of PATH.
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { PathWatch } from './path-watch.js';

/** Events of one write (open, modify, close, attrib) come together: look once they have settled. */
export const TOUCH_SETTLE_MS = 100;
/** Files up to this size are also compared by content (a new content with the same mtime). */
const HASHED_MAX_BYTES = 64 * 1024;

export interface TouchPath {
  readonly path: string;
  /** Whether the path exists now (a missing one is waited for). */
  readonly exists: boolean;
  /** Whether inotify watches it (false while a watch could not be set up: retried every 2 s). */
  readonly watching: boolean;
}

class Watched {
  readonly path: string;
  #identity: string | undefined;
  #watches: PathWatch[] = [];
  #links: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #failed = false;
  #closed = false;
  readonly #onTouched: () => void;
  readonly #onError: (err: Error) => void;

  constructor(path: string, onTouched: () => void, onError: (err: Error) => void) {
    this.path = path;
    this.#onTouched = onTouched;
    this.#onError = onError;
    this.#identity = identityOf(path);
    this.#arm();
  }

  get state(): TouchPath {
    return { path: this.path, exists: this.#identity !== undefined, watching: !this.#failed };
  }

  #arm(): void {
    for (const w of this.#watches) w.close();
    this.#links = symlinksAbove(this.path);
    this.#failed = false;
    const onError = (err: Error): void => {
      this.#failed = true;
      this.#onError(err);
    };
    this.#watches = [this.path, ...this.#links].map((p) => new PathWatch(p, this.#hint, onError));
  }

  readonly #hint = (): void => {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#check, TOUCH_SETTLE_MS);
    this.#timer.unref();
  };

  readonly #check = (): void => {
    if (this.#closed) return;
    // A symlink on the way may point elsewhere now: the watch of the path's directory moves with it.
    const links = symlinksAbove(this.path);
    if (links.join('\0') !== this.#links.join('\0') || this.#links.length > 0) this.#arm();
    const before = this.#identity;
    this.#identity = identityOf(this.path);
    // Gone is no reason to reload (a deploy removes before it writes): its return is.
    if (this.#identity !== undefined && this.#identity !== before) this.#onTouched();
  };

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watches) w.close();
    this.#watches = [];
  }
}

/** Every vassal's `touch-reload` paths, kept in step with its config by `sync`. */
export class TouchReload {
  readonly #byVassal = new Map<string, { paths: readonly string[]; watched: Watched[] }>();
  readonly #onTouched: (vassal: string, path: string) => void;
  readonly #onError: (vassal: string, path: string, err: Error) => void;

  constructor(
    onTouched: (vassal: string, path: string) => void,
    onError: (vassal: string, path: string, err: Error) => void,
  ) {
    this.#onTouched = onTouched;
    this.#onError = onError;
  }

  /** Watches exactly `paths` for `vassal` (cheap when they are the ones it watches already). */
  sync(vassal: string, paths: readonly string[]): void {
    const had = this.#byVassal.get(vassal);
    // Called after every event of every vassal: most have no path and had none.
    if (had === undefined ? paths.length === 0 : had.paths === paths || sameList(had.paths, paths)) return;
    const keep = new Map((had?.watched ?? []).map((w) => [w.path, w]));
    const watched = [...new Set(paths)].map((path) => {
      const w = keep.get(path);
      keep.delete(path);
      return (
        w ??
        new Watched(
          path,
          () => {
            this.#onTouched(vassal, path);
          },
          (err) => {
            this.#onError(vassal, path, err);
          },
        )
      );
    });
    for (const w of keep.values()) w.close();
    if (watched.length === 0) this.#byVassal.delete(vassal);
    else this.#byVassal.set(vassal, { paths, watched });
  }

  forget(vassal: string): void {
    this.sync(vassal, []);
  }

  /** What `emperor show` says of each path. */
  list(vassal: string): TouchPath[] {
    return (this.#byVassal.get(vassal)?.watched ?? []).map((w) => w.state);
  }

  close(): void {
    for (const name of [...this.#byVassal.keys()]) this.forget(name);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * What a touch changes: the file (inode, through any symlink), its mtime, size, and for a small
 * file its content. Undefined when the path does not exist.
 */
function identityOf(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    let hash = '';
    if (st.isFile() && st.size <= HASHED_MAX_BYTES) {
      try {
        hash = createHash('sha256').update(readFileSync(path)).digest('hex');
      } catch {
        // unreadable: the stat alone decides
      }
    }
    return `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}:${hash}`;
  } catch {
    return undefined;
  }
}

/** The ancestors of `path` that are symlinks (a release switch changes what `path` names). */
function symlinksAbove(path: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      if (lstatSync(dir).isSymbolicLink()) out.push(dir);
    } catch {
      // missing: nothing above it is reached through it now
    }
  }
  return out;
}
