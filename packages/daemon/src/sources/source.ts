// What every source of vassals (a watched directory, an etcd prefix) hands the emperor. Below the
// reconciler nothing knows where a vassal came from: only its name, its text and an opaque identity.

export interface VassalDefinition {
  readonly name: string;
  /** Where it is defined, as every message names it: a file's path, or an etcd key as a URL. */
  readonly origin: string;
  /** Opaque: a new value means the definition was written again (a reload, or a touch). */
  readonly identity: string;
  /** sha256 of the bytes: a new identity with the same hash is a touch (same config, reload). */
  readonly contentHash: string;
  /** The text as stored; undefined when it could not be read (readError says why). */
  readonly bytes: Uint8Array | undefined;
  readonly readError: string | undefined;
  /** The size the source saw: a reader may cut the bytes at the config reader's limit. */
  readonly size: number;
  /** When this version was written as far as the source knows (ns since the epoch): older claims of an address win. */
  readonly modifiedNs: bigint;
  /**
   * For text that is no file: the directory that `%d`, the `chdir` default and relative paths
   * mean (docs/fleet.md). Undefined for a file, whose own directory it is.
   */
  readonly dir?: string;
  /** Tyrant mode (directories only): the file's owner, whom its vassal runs as; a new owner stops it. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

/** A second definition of a name: ignored (and shown under the first) while the first is there. */
export interface DuplicateDefinition {
  readonly name: string;
  readonly origin: string;
  readonly firstOrigin: string;
}

/** Everything one source defines now: it replaces that source's previous update, never another's. */
export interface SourceUpdate {
  readonly vassals: ReadonlyMap<string, VassalDefinition>;
  readonly duplicates: readonly DuplicateDefinition[];
  /** For definitions (re)read by this update: when the change was first seen (epoch ms), by origin. */
  readonly changedAt: ReadonlyMap<string, number>;
}

export interface VassalSource {
  /** As given to `--vassals`: named in logs and in status. */
  readonly label: string;
  /** Starts watching; resolves once the first update (the whole current set) has been handed on. */
  start(): Promise<void>;
  /** SIGHUP: look at everything again. */
  rescan(): Promise<void>;
  close(): Promise<void>;
}
