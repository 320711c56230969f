// The one registry of error codes for the whole project (config, daemon and CLI), so a code
// means one thing everywhere. docs/errors.md lists every code; a test keeps the two in sync.

export const ERROR_CODES = {
  // File-level problems: the file as a whole cannot be read as a vassal file.
  EMP_CONFIG_FILE_NOT_FOUND: 'The vassal file does not exist.',
  EMP_CONFIG_FILE_UNREADABLE: 'The vassal file exists but cannot be opened or read (permissions, I/O error).',
  EMP_CONFIG_NOT_A_FILE: 'The path is a directory, a FIFO or another non-regular file.',
  EMP_CONFIG_FILE_TOO_BIG: 'The vassal file is over 1 MiB.',
  EMP_CONFIG_BINARY: 'The vassal file contains NUL bytes: it is not a text file.',
  EMP_CONFIG_ENCODING: 'The vassal file is not valid UTF-8.',
  EMP_CONFIG_FILE_NAME:
    'The file name is not one the emperor loads (`NAME.ini`, NAME made of `A-Z a-z 0-9 . _ -`).',
  EMP_CONFIG_NO_SECTION: 'The file has no `[vassal]` section.',
  // Line-level syntax.
  EMP_CONFIG_SYNTAX: 'A line is not `key = value`, a section header, a comment or blank.',
  EMP_CONFIG_CONTROL_CHAR: 'A line contains a control character other than tab.',
  EMP_CONFIG_UNKNOWN_SECTION: 'A section other than `[vassal]`.',
  EMP_CONFIG_DUPLICATE_SECTION: 'The `[vassal]` section header appears twice.',
  EMP_CONFIG_OUTSIDE_SECTION: 'A `key = value` line before the `[vassal]` header.',
  // Keys.
  EMP_CONFIG_UNKNOWN_KEY: 'A key that emperor does not know; the message suggests the closest known key.',
  EMP_CONFIG_DUPLICATE_KEY: 'A key that takes one value is given more than once.',
  EMP_CONFIG_MISSING_KEY: 'A required key (`exec`) is missing.',
  EMP_CONFIG_EMPTY_VALUE: 'A key is given with an empty value.',
  // Values.
  EMP_CONFIG_INVALID_VALUE: 'A value does not have the type the key expects; the message says what is valid.',
  EMP_CONFIG_EXEC_QUOTE: 'The `exec` command line has an unbalanced quote or a trailing backslash.',
  EMP_CONFIG_RESERVED_ENV: 'An `env` line sets a variable that the emperor sets itself for each instance.',
  EMP_CONFIG_DUPLICATE_SOCKET: 'The same socket address is given twice in one file.',
  EMP_CONFIG_UNIX_PATH_TOO_LONG: 'A unix socket path is longer than the 107 bytes the kernel allows.',
  // Placeholders.
  EMP_CONFIG_UNKNOWN_PLACEHOLDER: 'A `%(name)` that is neither a key of the file nor a `set-placeholder`.',
  EMP_CONFIG_AMBIGUOUS_PLACEHOLDER: 'A `%(key)` that names a key given several times.',
  EMP_CONFIG_UNSET_ENV: 'A `$(NAME)` whose environment variable is not set in the emperor.',
  EMP_CONFIG_UNKNOWN_MAGIC: 'A `%x` that is not one of `%n %p %d %%` or `%(name)`.',
  EMP_CONFIG_PLACEHOLDER_SYNTAX: 'An unterminated `%(` or `$(`, or an empty name inside one.',
  EMP_CONFIG_PLACEHOLDER_CYCLE: 'Placeholders refer to each other in a cycle.',
  EMP_CONFIG_VALUE_TOO_LONG:
    'A value grows over 64 KiB once placeholders are expanded, or nests them over 32 deep.',
  EMP_CONFIG_DUPLICATE_PLACEHOLDER: 'Two `set-placeholder` lines define the same name, or one shadows a key.',
  // Rules across keys.
  EMP_CONFIG_CONFLICT: 'Two keys contradict each other (e.g. `on-demand` without `socket`).',
  EMP_CONFIG_UWSGI_SOCKETS:
    'A file with `[vassal]` and `[uwsgi]` sections declares listening addresses in both: declare them in one.',
  EMP_CONFIG_UWSGI_OTHER_SECTION:
    'Warning: a file with `[vassal]` and `[uwsgi]` sections has another section (`[prod]`): neither the emperor nor `uwsgi --ini FILE` reads it; uWSGI does where `[uwsgi]` includes it (`ini = %p:prod`).',
  EMP_CONFIG_TYRANT_ROOT:
    'Tyrant mode: a vassal file owned by uid 0 or gid 0 (it would run as root): chown it to the app user.',
  EMP_CONFIG_TYRANT_USER:
    'Tyrant mode: a vassal file names a `user` or `group` other than its owner (a vassal runs as the owner of its file).',
  EMP_CONFIG_TYRANT_UWSGI_ID:
    "Warning: tyrant mode and a `[uwsgi]` section's own `uid` or `gid`: uWSGI starts as the file's owner and changes ids only when it starts as root, so the line raises nothing (`uid = 0` included).",
  EMP_CONFIG_UNKNOWN_USER: 'A `user` or `socket-owner` user that the system does not know.',
  EMP_CONFIG_UNKNOWN_GROUP: 'A `group` or `socket-owner` group that the system does not know.',
  EMP_CONFIG_USER_NEEDS_GROUP:
    'A numeric `user` without a passwd entry, so its group must be given with `group`.',
  // Warnings: the file is valid but probably not what was meant.
  EMP_CONFIG_SHELL_NO_EXEC:
    'Warning: `shell = true` with sockets or `ready = notify`, but the command does not start with `exec `.',
  EMP_CONFIG_SHELL_SYNTAX:
    'Warning: `exec` contains shell syntax (`|`, `>`, `$`, ...) but runs without a shell.',
  EMP_CONFIG_UWSGI_STOP_SIGNAL:
    'Warning: a uWSGI vassal without `stop-signal = SIGINT` or `--die-on-term` (uWSGI reloads on SIGTERM).',
  EMP_CONFIG_UWSGI_BINARY:
    '`emperor check`: a `[uwsgi]` file, and the uWSGI binary that runs it is not installed (not on PATH, or not the `--uwsgi` given).',
  EMP_CONFIG_UWSGI_PLUGIN:
    '`emperor check`: uWSGI cannot load a plugin that a `[uwsgi]` file names (`plugins = python3`).',
  EMP_CONFIG_UWSGI_NOT_OWNED:
    'Warning: a `[uwsgi]` file has a listening address the emperor does not own (uWSGI binds it; a reload is its graceful SIGHUP).',
  EMP_CONFIG_GUNICORN_BIND_FD:
    'Warning: gunicorn with owned sockets and `--bind fd://N` (gunicorn takes `LISTEN_FDS` by itself; 20.1 exits with EBADF).',
  EMP_CONFIG_UNUSED_KEY:
    'Warning: a key that has no effect with the other keys given (e.g. `socket-mode` without a unix socket).',
  // Summary of a failed check, and problems across vassals.
  EMP_CONFIG_INVALID:
    'A vassal file has errors (the summary code of `emperor check` and of a rejected reload).',
  EMP_VASSAL_DUPLICATE:
    'The same vassal name is defined by two files (two watched directories, or twice on `emperor check`).',
  EMP_VASSAL_SOCKET_CONFLICT:
    'Two vassals claim one TCP address or unix socket path: the one that claimed it first keeps it, the other is refused.',
  EMP_CONFIG_NO_VASSALS:
    '`emperor check` found no vassal file (`NAME.ini`) in a directory: an error when it checked nothing at all, else a warning.',
  // The daemon and its native addon: thrown as `error.code`, never shown as FILE:LINE.
  EMP_RUNTIME_DIR_UNSAFE:
    'The directory of the control socket and state file is a symlink, belongs to another user, or is writable by others.',
  EMP_STATE_FILE_IN_USE: "The runtime directory's state file belongs to an emperor that is still running.",
  EMP_FD_LIMIT_TOO_LOW:
    '`emperor run` under an open-file limit below 128: loading the emperor alone opens about 60 files at once.',
  EMP_NODE_FLAGS_INVALID:
    '`$EMPEROR_NODE_FLAGS` holds a word that is not a whole flag (`--name` or `--name=value`).',
  EMP_BAD_PGID:
    'A process group id of 0 or 1 (our own group, or every process) reached the code that kills groups.',
  EMP_NO_CGROUP:
    '`emperor run --containment cgroup` was given and no cgroup tree can be had here; the message says why (no cgroup2 mount, not root and no `Delegate=yes`, a read-only hierarchy). Use `--containment auto` to fall back to the subreaper.',
  EMP_TYRANT_NOT_ROOT:
    '`emperor run --tyrant` by a user other than root: running each vassal as the owner of its file takes root.',
  EMP_TYRANT_SYMLINK:
    'Warning (daemon): tyrant mode does not follow a vassal file that is a symlink (the owner of a link says nothing of who wrote its target).',
  EMP_BAD_CGROUP_NAME:
    "The name given for the emperor's cgroup subtree is not a plain directory name (letters, digits, '.', '_', '-').",
  EMP_ETCD_UNREACHABLE:
    'An `etcd://` source cannot be read (refused, timed out, TLS or authentication failed): every vassal keeps running, the emperor retries with backoff (up to 5 s) and reconciles when it answers; at start it runs the set cached in `--state-dir` (docs/fleet.md). In the log (`etcd-unreachable`) and in `emperor status`.',
  EMP_ETCD_KEY_NAME:
    'A key under `PREFIX/vassals/` whose NAME is not a vassal name (letters, digits, `.`, `_`, `-`, not starting with `.`; no `/`): ignored, logged once with the key.',
  EMP_ETCD_CACHE:
    'The cache of an `etcd://` source in `--state-dir` cannot be read or written: the message names the file. The vassals run as before; only a start while etcd is unreachable would lack the set.',
  EMP_NATIVE_NOT_BUILT:
    'The @emperor/native addon cannot load: no prebuilt binary fits this platform and none was compiled; `npm rebuild -g emperor --build-from-source` compiles it (gcc, make, python3; in a checkout `npm rebuild -w packages/native --build-from-source`).',
  // The control socket and the CLI (docs/protocol.md has the HTTP statuses).
  EMP_CONTROL_BAD_REQUEST:
    'HTTP 400: malformed HTTP, a bad parameter, or a name that is not a vassal name or glob.',
  EMP_CONTROL_BAD_JSON: 'HTTP 400: the request body is not a JSON object.',
  EMP_CONTROL_UNAUTHORIZED:
    'HTTP 401: an action on the dashboard TCP port without its token, or a login with a wrong one; the message names the token file.',
  EMP_CONTROL_FORBIDDEN:
    'HTTP 403: a request that changes state from a page of another origin or site, a browser request without X-Emperor-Request, or a Host that is not this emperor (DNS rebinding).',
  EMP_CONTROL_NOT_FOUND: 'HTTP 404: no such control endpoint.',
  EMP_CONTROL_METHOD: 'HTTP 405: the wrong HTTP method for the endpoint.',
  EMP_CONTROL_TIMEOUT:
    'HTTP 408: the request did not arrive in time, or `--wait` ran out before the outcome.',
  EMP_CONTROL_TOO_LARGE: 'HTTP 413/431: a request body over 64 KiB or headers over 16 KiB.',
  EMP_CONTROL_INTERNAL: 'HTTP 500: a bug in the control server; the emperor log has the details.',
  EMP_CONTROL_STARTING: 'HTTP 503: the emperor has opened its socket but not yet read its vassals.',
  EMP_CONTROL_BUSY:
    'HTTP 503: too many connections, and every one is answering a request (`logs -f`, `--wait`); the CLI exits 3. Try again when one ends.',
  EMP_CONTROL_IN_USE:
    'Another emperor answers on the control socket: a second `emperor run` refuses to start.',
  EMP_CONTROL_NOT_SOCKET:
    'Something that is not a socket is in the way at the control socket path; it is never removed.',
  EMP_CONTROL_GROUP:
    '`--control-group` names a group that does not exist, or the socket cannot be given to it.',
  EMP_CONTROL_BAD_ANSWER: "The CLI got an answer from the control socket that is not the emperor's JSON.",
  EMP_CONTROL_ERROR:
    'The CLI could not complete a request on the control socket (the message has the errno).',
  EMP_CLI_USAGE: 'A command-line usage error (exit 2), such as a bad `--metrics` address.',
  EMP_RUN_CONFIG:
    'The `emperor run --config` file is missing or unreadable, or a line of it is not a known `key = value` (exit 2).',
  EMP_VASSAL_UNKNOWN: 'No vassal matches a name or glob; the message lists the nearest known names.',
  EMP_VASSAL_NOT_RUNNING: "The vassal's file has never parsed, so there is nothing to show or follow.",
  // The Node SDK (packages/vassal), thrown in the app.
  EMP_SDK_NO_SOCKET:
    'Node SDK: `listen()` found no inherited socket (LISTEN_PID is not this process) and no `PORT` or `port`.',
  EMP_SDK_SOCKET_NAME:
    'Node SDK: `listen({ name })` names a socket the instance did not inherit; the message lists the names there are.',
  EMP_SDK_BAD_PORT: 'Node SDK: `PORT` or the `port` option is not a port number from 0 to 65535.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
