// The table of every vassal key (SPEC §3): its converter, whether it repeats, its default and
// its documentation. docs/config.md documents exactly these keys; a test keeps them in sync.
import * as c from './converters.js';
import { cronLine } from './cron.js';
import { socketAddress } from './socket-address.js';
import type { CronSpec, ReadySpec, ReloadSpec, RestartPolicy, SignalName, SocketSpec } from './types.js';

export interface KeyContext extends c.ConvertContext {
  readonly line: number;
}

export interface KeySpec<T> {
  /** A list key: each line adds a value. Otherwise a second line is an error. */
  readonly repeatable: boolean;
  /** For the docs: the value type as users read it. */
  readonly type: string;
  /** For the docs: the default as users read it. */
  readonly default: string;
  readonly doc: string;
  readonly example: string;
  readonly convert: (value: string, ctx: KeyContext) => c.Converted<T>;
}

function key<T>(spec: KeySpec<T>): KeySpec<T> {
  return spec;
}

function cron(unique: boolean) {
  return (value: string, ctx: KeyContext): c.Converted<CronSpec> => {
    const r = cronLine(value);
    return r.ok ? c.ok({ ...r.value, unique, line: ctx.line }) : r;
  };
}

const DURATION = 'seconds, fractions allowed';

export const KEYS = {
  exec: key<string>({
    repeatable: false,
    type: 'command line',
    default: 'required',
    doc: 'The command line of the app, split into words as a POSIX shell splits them (quotes and backslashes honoured) and run without a shell.',
    example: 'node server.js --port 0',
    convert: c.text,
  }),
  shell: key<boolean>({
    repeatable: false,
    type: 'boolean',
    default: 'false',
    doc: 'Run `exec` through `/bin/sh -c`; with sockets or `ready = notify` the command must `exec` the app.',
    example: 'true',
    convert: c.boolean,
  }),
  chdir: key<string>({
    repeatable: false,
    type: 'path',
    default: "the vassal file's directory",
    doc: "Working directory of the instances; relative to the vassal file's directory.",
    example: '/srv/shop',
    convert: c.path,
  }),
  env: key<c.EnvAssignment>({
    repeatable: true,
    type: '`NAME=VALUE`',
    default: 'none',
    doc: "An environment variable added to the emperor's environment; a later line for the same name wins.",
    example: 'NODE_ENV=production',
    convert: c.envAssignment,
  }),
  'clear-env': key<boolean>({
    repeatable: false,
    type: 'boolean',
    default: 'false',
    doc: "Start from an empty environment (plus `PATH`) instead of the emperor's.",
    example: 'true',
    convert: c.boolean,
  }),
  processes: key<number>({
    repeatable: false,
    type: 'integer 1-1024, or `auto`',
    default: '1',
    doc: 'Instances per generation; `auto` is the number of CPUs.',
    example: '4',
    convert: c.processes,
  }),
  socket: key<SocketSpec>({
    repeatable: true,
    type: 'socket address',
    default: 'none',
    doc: 'An owned listening socket, passed to every instance from fd 3 on: `HOST:PORT`, `:PORT` (all addresses), `[IPV6]:PORT` or `unix:PATH`, optionally prefixed by `name=` for `LISTEN_FDNAMES`.',
    example: 'http=127.0.0.1:8080',
    convert: (value, ctx) => socketAddress(value, ctx, ctx.line),
  }),
  'socket-mode': key<number>({
    repeatable: false,
    type: 'octal mode',
    default: '0660',
    doc: 'Permissions of the unix sockets.',
    example: '0666',
    convert: c.octal('mode'),
  }),
  'socket-owner': key<c.Owner>({
    repeatable: false,
    type: '`user:group`',
    default: "the emperor's user and group",
    doc: 'Owner of the unix sockets: `user:group`, `user` or `:group`, names or numeric ids.',
    example: 'www-data:www-data',
    convert: c.owner,
  }),
  backlog: key<number>({
    repeatable: false,
    type: 'integer 1-65535',
    default: '1024',
    doc: 'Listen backlog of the owned sockets (the kernel caps it at `net.core.somaxconn`).',
    example: '4096',
    convert: c.integer(1, 65535),
  }),
  'on-demand': key<boolean>({
    repeatable: false,
    type: 'boolean',
    default: 'false',
    doc: 'Bind the sockets but spawn nothing until the first client connects. Needs `socket`.',
    example: 'true',
    convert: c.boolean,
  }),
  idle: key<number>({
    repeatable: false,
    type: DURATION,
    default: '0 (never)',
    doc: 'Seconds without client connections after which an on-demand vassal is stopped and waits again. Needs `on-demand`.',
    example: '600',
    convert: c.duration(0),
  }),
  ready: key<ReadySpec>({
    repeatable: false,
    type: '`started`, `fd`, `notify` or `delay:SECONDS`',
    default: 'started',
    doc: 'How an instance signals readiness: at spawn (`started`), a newline on the fd in `EMPEROR_NOTIFY_FD` (`fd`), sd_notify `READY=1` (`notify`), or after a fixed delay.',
    example: 'notify',
    convert: c.ready,
  }),
  'ready-timeout': key<number>({
    repeatable: false,
    type: DURATION,
    default: '30',
    doc: 'Seconds to wait for readiness before the start counts as failed.',
    example: '60',
    convert: c.duration(1),
  }),
  reload: key<ReloadSpec>({
    repeatable: false,
    type: '`rolling`, `restart` or `signal:SIGNAL`',
    default: '`rolling` with sockets, else `restart`',
    doc: 'How a changed file is applied: start the new generation before stopping the old (`rolling`, needs `socket`), stop then start (`restart`), or send a signal and let the app reload itself.',
    example: 'signal:SIGHUP',
    convert: c.reload,
  }),
  'retire-nice': key<number>({
    repeatable: false,
    type: 'integer 0-19',
    default: '0',
    doc: 'During a rolling reload, how much lower the CPU priority (nice) of the generation being retired is while it drains and exits, so that its exit work leaves the CPU to the new generation. For prefork servers that stop right after their current request (gunicorn, uWSGI); not for apps that keep serving keep-alive clients while they drain.',
    example: '10',
    convert: c.integer(0, 19),
  }),
  'stop-signal': key<SignalName>({
    repeatable: false,
    type: 'signal',
    default: 'SIGTERM',
    doc: "First signal sent to an instance's main process on stop (`SIGTERM`, `TERM` or `15`).",
    example: 'SIGINT',
    convert: c.signal,
  }),
  'stop-timeout': key<number>({
    repeatable: false,
    type: DURATION,
    default: '30',
    doc: "Seconds after `stop-signal` before `SIGKILL` goes to the instance's whole process group.",
    example: '10',
    convert: c.duration(0),
  }),
  restart: key<RestartPolicy>({
    repeatable: false,
    type: '`always`, `on-failure` or `no`',
    default: 'always',
    doc: 'Whether an instance that exits by itself is restarted: always, only after a non-zero exit or a signal, or never.',
    example: 'on-failure',
    convert: c.oneOf<RestartPolicy>(['always', 'on-failure', 'no']),
  }),
  'restart-delay': key<number>({
    repeatable: false,
    type: DURATION,
    default: '1',
    doc: 'First backoff step before restarting an instance that exited; it doubles up to `restart-delay-max`.',
    example: '0.5',
    convert: c.duration(1),
  }),
  'restart-delay-max': key<number>({
    repeatable: false,
    type: DURATION,
    default: '60',
    doc: 'Largest backoff step; at least `restart-delay`.',
    example: '300',
    convert: c.duration(1),
  }),
  nodes: key<string[]>({
    repeatable: true,
    type: 'globs of node names',
    default: '`*` (every node)',
    doc: 'Which emperors run the vassal: globs on their node name (`emperor run --node-name`, default the host name), several per line or one line each; an emperor whose name matches none stops it (docs/fleet.md).',
    example: 'web-* db-1',
    convert: c.nodeGlobs,
  }),
  'env-file': key<string>({
    repeatable: true,
    type: 'path',
    default: 'none',
    doc: "A file of `NAME=VALUE` lines (`#` comments), read at each start, as systemd's `EnvironmentFile=`.",
    example: '/etc/shop/env',
    convert: c.path,
  }),
  'touch-reload': key<string>({
    repeatable: true,
    type: 'path',
    default: 'none',
    doc: 'A file whose new mtime or content reloads the vassal (deploys touch the app, not the vassal file).',
    example: '/srv/shop/current/REVISION',
    convert: c.path,
  }),
  user: key<c.Principal>({
    repeatable: false,
    type: 'user name or uid',
    default: "the emperor's user",
    doc: 'Run the instances as this user (the emperor must be root); its group is the default `group`.',
    example: 'www-data',
    convert: c.principal,
  }),
  group: key<c.Principal>({
    repeatable: false,
    type: 'group name or gid',
    default: "the user's group, else the emperor's",
    doc: 'Run the instances with this group.',
    example: 'www-data',
    convert: c.principal,
  }),
  umask: key<number>({
    repeatable: false,
    type: 'octal mask',
    default: '022',
    doc: 'umask of the instances.',
    example: '027',
    convert: c.octal('umask'),
  }),
  'max-rss': key<number>({
    repeatable: false,
    type: 'size',
    default: 'none',
    doc: "Recycle an instance (graceful replace) when its process tree's RSS exceeds this.",
    example: '512M',
    convert: c.size(1, { uwsgiMiB: true }),
  }),
  'max-lifetime': key<number>({
    repeatable: false,
    type: DURATION,
    default: 'none',
    doc: 'Recycle an instance after it has run this many seconds.',
    example: '86400',
    convert: c.duration(1),
  }),
  watchdog: key<number>({
    repeatable: false,
    type: DURATION,
    default: 'none',
    doc: 'An instance that sends no `WATCHDOG=1` (notify) or SDK heartbeat (fd) within this many seconds is killed and replaced.',
    example: '30',
    convert: c.duration(1),
  }),
  'attach-daemon': key<string>({
    repeatable: true,
    type: 'command',
    default: 'none',
    doc: 'A side command started with the vassal, restarted if it dies and stopped with it.',
    example: 'node worker.js',
    convert: c.text,
  }),
  'smart-attach-daemon': key<c.SmartDaemon>({
    repeatable: true,
    type: '`PIDFILE COMMAND`',
    default: 'none',
    doc: 'A side daemon that forks itself, tracked through its pidfile and kept running across reloads.',
    example: '/run/shop/memcached.pid memcached -d -P /run/shop/memcached.pid',
    convert: c.smartAttachDaemon,
  }),
  cron: key<CronSpec>({
    repeatable: true,
    type: 'cron line',
    default: 'none',
    doc: "A scheduled command: `MIN HOUR DAY MONTH WEEKDAY COMMAND` in crontab syntax (`*/5`, `1-5`, `1,15`, `@daily`) or uWSGI's (`-1` any, `-N` every N).",
    example: '*/5 * * * * node jobs/sweep.js',
    convert: cron(false),
  }),
  'unique-cron': key<CronSpec>({
    repeatable: true,
    type: 'cron line',
    default: 'none',
    doc: 'As `cron`, but a run is skipped while the previous run of the same job is still going.',
    example: '-10 -1 -1 -1 -1 node jobs/reindex.js',
    convert: cron(true),
  }),
  log: key<string>({
    repeatable: false,
    type: 'path',
    default: '`<log-dir>/%n.log`',
    doc: "File receiving the instances' stdout and stderr, verbatim.",
    example: '/var/log/shop/app.log',
    convert: c.path,
  }),
  'log-timestamps': key<boolean>({
    repeatable: false,
    type: 'boolean',
    default: 'false',
    doc: 'Prefix each log line with an ISO-8601 time and the instance.',
    example: 'true',
    convert: c.boolean,
  }),
  'log-max-size': key<number>({
    repeatable: false,
    type: 'size',
    default: '10M',
    doc: 'Rotate the log when it reaches this size; `0` never rotates.',
    example: '100M',
    convert: c.size(0),
  }),
  'log-backups': key<number>({
    repeatable: false,
    type: 'integer 0-100',
    default: '5',
    doc: 'Rotated log files kept (`app.log.1` ...).',
    example: '10',
    convert: c.integer(0, 100),
  }),
  'set-placeholder': key<c.EnvAssignment>({
    repeatable: true,
    type: '`name=value`',
    default: 'none',
    doc: 'Defines `%(name)` for the other values of the file.',
    example: 'app=/srv/shop',
    convert: c.placeholderDefinition,
  }),
} as const;

export type KeyName = keyof typeof KEYS;
export type KeyValue<K extends KeyName> = (typeof KEYS)[K] extends KeySpec<infer T> ? T : never;

export const KEY_NAMES: readonly KeyName[] = Object.keys(KEYS) as KeyName[];

export function isKeyName(name: string): name is KeyName {
  return Object.hasOwn(KEYS, name);
}

/**
 * Names other supervisors use for our keys (uWSGI, Supervisor, PM2, systemd), for a hint that
 * edit distance cannot find (`workers` is nowhere near `processes`).
 */
export const ALIASES: Readonly<Record<string, KeyName>> = {
  command: 'exec',
  cmd: 'exec',
  script: 'exec',
  execstart: 'exec',
  workers: 'processes',
  numprocs: 'processes',
  instances: 'processes',
  'http-socket': 'socket',
  'uwsgi-socket': 'socket',
  bind: 'socket',
  // uWSGI's `listen` is the queue size, not an address.
  listen: 'backlog',
  cheap: 'on-demand',
  harakiri: 'watchdog',
  logdate: 'log-timestamps',
  directory: 'chdir',
  cwd: 'chdir',
  workingdirectory: 'chdir',
  environment: 'env',
  environmentfile: 'env-file',
  stopsignal: 'stop-signal',
  killsignal: 'stop-signal',
  stopwaitsecs: 'stop-timeout',
  timeoutstopsec: 'stop-timeout',
  autorestart: 'restart',
  'reload-on-rss': 'max-rss',
  'max-memory-restart': 'max-rss',
  'max-worker-lifetime': 'max-lifetime',
  logto: 'log',
  daemonize: 'log',
  stdout_logfile: 'log',
  uid: 'user',
  gid: 'group',
  'chmod-socket': 'socket-mode',
  'chown-socket': 'socket-owner',
  'listen-queue': 'backlog',
  'restart-delay-ms': 'restart-delay',
  placeholder: 'set-placeholder',
};
