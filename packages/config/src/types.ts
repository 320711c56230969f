// The frozen result of reading a vassal file. Every value is converted once, here at the edge;
// the daemon never sees a raw string where it expects a number, a signal or a list.

export type SignalName = NodeJS.Signals;

/** An owned listening socket, as written in a `socket` line. */
export type SocketSpec =
  | {
      readonly kind: 'tcp';
      /** `name=` prefix for LISTEN_FDNAMES, or undefined. */
      readonly name: string | undefined;
      /** Address to bind; `::` for `:PORT` (dual-stack, falls back to 0.0.0.0 without IPv6). */
      readonly host: string;
      readonly port: number;
      /** The address as written, without the name prefix: `127.0.0.1:8080`, `:8080`, `[::1]:8080`. */
      readonly address: string;
      /** Line of the `socket` key, for messages such as "port in use"; always set by parseVassal. */
      readonly line?: number;
    }
  | {
      readonly kind: 'unix';
      readonly name: string | undefined;
      /** Absolute path of the socket file. */
      readonly path: string;
      /** `unix:/path`. */
      readonly address: string;
      /** Line of the `socket` key, for messages such as "port in use"; always set by parseVassal. */
      readonly line?: number;
    };

export type ReadySpec =
  | { readonly kind: 'started' }
  | { readonly kind: 'fd' }
  | { readonly kind: 'notify' }
  | { readonly kind: 'delay'; readonly ms: number };

export type ReloadSpec =
  | { readonly kind: 'rolling' }
  | { readonly kind: 'restart' }
  | { readonly kind: 'signal'; readonly signal: SignalName };

export type RestartPolicy = 'always' | 'on-failure' | 'no';

/** One cron field expanded to the sorted list of values it matches. */
export type CronField = readonly number[];

export interface CronSpec {
  readonly minute: CronField; // 0-59
  readonly hour: CronField; // 0-23
  readonly day: CronField; // 1-31
  readonly month: CronField; // 1-12
  readonly weekday: CronField; // 0-6, Sunday = 0 (7 accepted in input as Sunday)
  /** True when day and weekday are both restricted: cron then matches either (crontab(5)). */
  readonly dayOrWeekday: boolean;
  readonly command: string;
  /** `unique-cron`: skip a run while the previous one is still going. */
  readonly unique: boolean;
  readonly line: number;
}

export interface SmartAttachDaemon {
  readonly pidfile: string;
  readonly command: string;
}

export interface UserSpec {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface GroupSpec {
  readonly name: string;
  readonly gid: number;
}

export interface VassalConfig {
  /** File name without `.ini`. */
  readonly name: string;
  /** Absolute path of the vassal file, or where its text came from (ParseOptions.file). */
  readonly file: string;
  /** The `exec` value after placeholder expansion. */
  readonly exec: string;
  readonly shell: boolean;
  /** What is spawned: the split `exec`, or `['/bin/sh', '-c', exec]` with `shell = true`. */
  readonly argv: readonly string[];
  /** Absolute working directory. */
  readonly chdir: string;
  /** `env` lines in file order; a later line for the same name wins. */
  readonly env: Readonly<Record<string, string>>;
  readonly clearEnv: boolean;
  readonly processes: number;
  /** Nice increment of a generation a rolling reload retires, while it drains (0: none). */
  readonly retireNice: number;
  readonly sockets: readonly SocketSpec[];
  readonly socketMode: number;
  readonly socketOwner: { readonly uid: number | undefined; readonly gid: number | undefined } | undefined;
  readonly backlog: number;
  readonly onDemand: boolean;
  /** 0 = never go back to waiting. */
  readonly idleMs: number;
  readonly ready: ReadySpec;
  readonly readyTimeoutMs: number;
  readonly reload: ReloadSpec;
  readonly stopSignal: SignalName;
  readonly stopTimeoutMs: number;
  readonly restart: RestartPolicy;
  readonly restartDelayMs: number;
  readonly restartDelayMaxMs: number;
  /** Absolute paths, read at each start. */
  readonly envFiles: readonly string[];
  /** Absolute paths whose mtime or content change reloads the vassal. */
  readonly touchReload: readonly string[];
  readonly user: UserSpec | undefined;
  readonly group: GroupSpec | undefined;
  readonly umask: number;
  readonly maxRssBytes: number | undefined;
  readonly maxLifetimeMs: number | undefined;
  readonly watchdogMs: number | undefined;
  readonly attachDaemons: readonly string[];
  readonly smartAttachDaemons: readonly SmartAttachDaemon[];
  readonly crons: readonly CronSpec[];
  /** Absolute log file path, or undefined for the daemon's default `<log-dir>/<name>.log`. */
  readonly log: string | undefined;
  readonly logTimestamps: boolean;
  readonly logMaxSizeBytes: number;
  readonly logBackups: number;
  /** Globs of the node names that run the vassal (`nodes`); `['*']` by default. */
  readonly nodes: readonly string[];
  /** `set-placeholder` definitions, for `emperor show`. */
  readonly placeholders: Readonly<Record<string, string>>;
  /** Set for a `[uwsgi]` file: the addresses uWSGI listens on, owned by the emperor or not. */
  readonly uwsgi?: {
    readonly listeners: readonly UwsgiListener[];
    /**
     * The owned sockets are handed on uWSGI's command line (`--KEY fd://N`), so the instance
     * gets no LISTEN_FDS: uWSGI would take those fds a second time, with its default protocol.
     */
    readonly fdsOnArgv: boolean;
    /** Plugins the file loads (`plugins`, `plugin`, `need-plugin`), for `emperor check`. */
    readonly plugins: readonly { readonly name: string; readonly line: number }[];
    /** `plugins-dir` values, where uWSGI looks for them first. */
    readonly pluginsDirs: readonly string[];
  };
}

/** A listening address of a `[uwsgi]` file. */
export type UwsgiListener = {
  /** The uWSGI option: `http-socket`, `socket`, `http`, ... */
  readonly key: string;
  /** Its value, placeholders expanded. */
  readonly value: string;
  readonly address: string;
  readonly line: number;
  /** The address uWSGI binds, when it can be known: for conflicts with other vassals. */
  readonly bound?: SocketSpec;
} & (
  | { readonly owned: false; readonly reason: string }
  | {
      readonly owned: true;
      readonly reason: undefined;
      readonly spec: SocketSpec;
      /** What follows the address in the value (`CERT,KEY` of `https-socket`), or ''. */
      readonly rest: string;
    }
);

/** Lookups that need the system, passed in so that the reader stays pure and testable. */
export interface SystemLookup {
  /** NSS user lookup (`getent passwd`); undefined when the user does not exist. */
  readonly user: (name: string) => { uid: number; gid: number } | undefined;
  /** NSS group lookup (`getent group`); undefined when the group does not exist. */
  readonly group: (name: string) => { gid: number } | undefined;
  /** NSS user lookup by uid (`getent passwd UID`), for tyrant mode's file owners. */
  readonly userById?: (uid: number) => { name: string } | undefined;
}

/** The owner of a vassal file (tyrant mode). */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

export interface ParseOptions {
  /**
   * Absolute path of the file: gives the vassal name, `%p`, `%d` and relative paths. For text that
   * is no file (`origin` set), where it came from, e.g. `etcd://10.0.0.1:2379/apps/vassals/shop`:
   * every issue names it, and so do `%p` and the config's `file`.
   */
  readonly file: string;
  /**
   * Text that is no file: the vassal's name (already checked by its source, so no file-name rule
   * applies) and the directory that `%d`, the `chdir` default and relative paths mean (docs/fleet.md:
   * `/`, as systemd's default WorkingDirectory=).
   */
  readonly origin?: { readonly name: string; readonly dir: string };
  /** The emperor's environment, for `$(NAME)`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** For `processes = auto`. */
  readonly cpus: number;
  /** Without it, `user`, `group` and `socket-owner` accept numeric ids only. */
  readonly lookup?: SystemLookup;
  /** The uWSGI binary a `[uwsgi]` file runs with (`emperor run --uwsgi`); default `uwsgi` on PATH. */
  readonly uwsgi?: string;
  /** Tyrant mode (`emperor run --tyrant`): the file's owner, whom the vassal runs as. */
  readonly owner?: FileOwner;
}
