// Rules across keys, defaults (SPEC §3) and name resolution; builds the VassalConfig.
// A rule involving a key whose own value was invalid stays quiet: that error is already out.
import { basename } from 'node:path';
import type { Principal } from './converters.js';
import type { IssueList } from './issue.js';
import { DEFAULTS } from './defaults.js';
import { SocketIndex } from './socket-address.js';
import { splitWords } from './split-words.js';
import type { GroupSpec, ParseOptions, SocketSpec, SystemLookup, UserSpec, VassalConfig } from './types.js';
import type { Values } from './values.js';

export interface ValidateInput {
  readonly name: string;
  readonly file: string;
  readonly dir: string;
  readonly values: Values;
  readonly placeholders: Readonly<Record<string, string>>;
  readonly options: ParseOptions;
  /** Without a `[vassal]` section (reported), a missing `exec` is no news. */
  readonly hasSection: boolean;
  /**
   * A `[uwsgi]` section beside `[vassal]`, as run on its own (uwsgi.ts): its command, sockets,
   * readiness and reload are the defaults of the keys this file leaves unset.
   */
  readonly uwsgi?: VassalConfig | undefined;
}

// Set by the emperor for each instance (SPEC §3); a vassal's own value would be overwritten or
// would confuse sd_listen_fds/sd_notify in the app.
const RESERVED_ENV = new Set([
  'EMPEROR_VASSAL',
  'EMPEROR_INSTANCE',
  'EMPEROR_GENERATION',
  'EMPEROR_TURN',
  'EMPEROR_NOTIFY_FD',
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
]);

const SHELL_SYNTAX_HINT =
  'it reaches the app as a literal argument; set `shell = true` to run the command through /bin/sh';

/** The config, or undefined when a required part is missing (errors reported). */
export function validate(input: ValidateInput, issues: IssueList): VassalConfig | undefined {
  const { values: v, options, uwsgi: base } = input;

  const given = v.first('exec');
  // With a `[uwsgi]` section, `exec` defaults to `uwsgi --ini FILE` and what a supervisor needs.
  const exec =
    given ?? (base !== undefined && !v.invalid('exec') ? { value: base.exec, line: undefined } : undefined);
  const shell = v.get('shell') ?? DEFAULTS.shell;
  let argv: readonly string[] | undefined;
  if (given === undefined && exec !== undefined && base !== undefined) {
    argv = base.argv;
  } else if (exec === undefined) {
    if (!v.invalid('exec') && input.hasSection) {
      issues.error(
        'EMP_CONFIG_MISSING_KEY',
        undefined,
        'exec',
        'missing `exec`: the command line of the app, e.g. `exec = node server.js`',
      );
    }
  } else if (shell) {
    argv = ['/bin/sh', '-c', exec.value];
  } else {
    const words = splitWords(exec.value);
    if (words.ok) {
      argv = words.value.argv;
      if (words.value.shellSyntax.length > 0) {
        const chars = words.value.shellSyntax.map((c) => `\`${c}\``).join(', ');
        issues.warn(
          'EMP_CONFIG_SHELL_SYNTAX',
          exec.line,
          'exec',
          `\`exec\` contains shell syntax (${chars}) but runs without a shell: ${SHELL_SYNTAX_HINT}`,
        );
      }
    } else {
      issues.error(
        words.code ?? 'EMP_CONFIG_INVALID_VALUE',
        exec.line,
        'exec',
        `invalid \`exec\` value \`${exec.value}\`: ${words.message}`,
      );
    }
  }

  const env = new Map<string, string>();
  for (const { value, line } of v.all('env')) {
    if (RESERVED_ENV.has(value.name)) {
      issues.error(
        'EMP_CONFIG_RESERVED_ENV',
        line,
        'env',
        `\`${value.name}\` is set by the emperor for each instance; a vassal cannot set it`,
      );
    } else {
      env.set(value.name, value.value);
    }
  }

  const sockets: SocketSpec[] = [];
  const index = new SocketIndex<SocketSpec>();
  for (const { value, line } of v.all('socket')) {
    const clash = index.claim(value, value);
    if (clash === undefined) sockets.push(value);
    else
      issues.error(
        'EMP_CONFIG_DUPLICATE_SOCKET',
        line,
        'socket',
        `socket \`${value.address}\` overlaps \`${clash.address}\` (line ${clash.line ?? '?'}); each address can be bound once`,
      );
  }
  const socketsKnown = !v.invalid('socket');
  if (base !== undefined) {
    // Sockets come from one section: `[vassal]` ones are handed as LISTEN_FDS, which uWSGI adopts
    // as its default `uwsgi` protocol; `[uwsgi]` ones keep their protocol (`--KEY fd://N`).
    const listeners = base.uwsgi?.listeners ?? [];
    const first = v.all('socket')[0];
    const theirs = listeners[0];
    if (first !== undefined && theirs !== undefined)
      issues.error(
        'EMP_CONFIG_UWSGI_SOCKETS',
        first.line,
        'socket',
        `both sections declare listening addresses (\`[vassal]\` \`socket\` here, \`[uwsgi]\` \`${theirs.key}\` on line ${theirs.line}): declare them in \`[uwsgi]\` only (the emperor owns them and keeps their protocol), or in \`[vassal]\` only (uWSGI serves them with its \`uwsgi\` protocol)`,
      );
    else if (first === undefined && socketsKnown) sockets.push(...base.sockets);
  }
  const hasUnix = sockets.some((s) => s.kind === 'unix');
  for (const k of ['socket-mode', 'socket-owner'] as const) {
    const line = v.line(k);
    if (line !== undefined && !hasUnix && socketsKnown) {
      issues.warn('EMP_CONFIG_UNUSED_KEY', line, k, `\`${k}\` has no effect without a \`unix:\` socket`);
    }
  }

  const onDemand = v.get('on-demand') ?? DEFAULTS.onDemand;
  const notOwned = base?.uwsgi?.listeners.find((l) => !l.owned);
  if (onDemand && sockets.length === 0 && socketsKnown) {
    issues.error(
      'EMP_CONFIG_CONFLICT',
      v.line('on-demand'),
      'on-demand',
      notOwned === undefined
        ? '`on-demand = true` needs a `socket`: the emperor waits for the first connection on it'
        : `\`on-demand = true\` needs a socket the emperor owns, and uWSGI binds \`${notOwned.key} = ${notOwned.value}\` itself (${notOwned.reason})`,
    );
  }
  const idleMs = v.get('idle') ?? DEFAULTS.idleMs;
  if (idleMs > 0 && !onDemand && !v.invalid('on-demand')) {
    issues.error(
      'EMP_CONFIG_CONFLICT',
      v.line('idle'),
      'idle',
      '`idle` needs `on-demand = true`: only an on-demand vassal can stop when idle and wait again',
    );
  }

  const reload =
    v.get('reload') ?? (sockets.length > 0 ? { kind: 'rolling' } : (base?.reload ?? { kind: 'restart' }));
  if ((v.get('retire-nice') ?? 0) > 0 && reload.kind !== 'rolling' && !v.invalid('reload')) {
    issues.warn(
      'EMP_CONFIG_UNUSED_KEY',
      v.line('retire-nice'),
      'retire-nice',
      `\`retire-nice\` applies to \`reload = rolling\` only, and this vassal reloads by \`${reload.kind}\`: it has no effect`,
    );
  }
  if (v.get('reload')?.kind === 'rolling' && sockets.length === 0 && socketsKnown) {
    issues.error(
      'EMP_CONFIG_CONFLICT',
      v.line('reload'),
      'reload',
      '`reload = rolling` needs a `socket` that both generations share; use `restart` or `signal:SIGHUP`',
    );
  }

  const restartDelayMs = v.get('restart-delay') ?? DEFAULTS.restartDelayMs;
  const restartDelayMaxMs = v.get('restart-delay-max') ?? DEFAULTS.restartDelayMaxMs;
  if (restartDelayMs > restartDelayMaxMs) {
    const line = v.line('restart-delay') ?? v.line('restart-delay-max');
    const key = v.line('restart-delay') === undefined ? 'restart-delay-max' : 'restart-delay';
    issues.error(
      'EMP_CONFIG_CONFLICT',
      line,
      key,
      `\`restart-delay\` (${restartDelayMs / 1000} s) is larger than \`restart-delay-max\` (${restartDelayMaxMs / 1000} s)`,
    );
  }

  const principals = resolvePrincipals(v, options.lookup, issues);
  const stopSignal = v.get('stop-signal') ?? DEFAULTS.stopSignal;
  const ready = v.get('ready') ?? base?.ready ?? DEFAULTS.ready;

  if (
    exec !== undefined &&
    shell &&
    (sockets.length > 0 || ready.kind === 'notify') &&
    !/^exec\s/.test(exec.value)
  ) {
    issues.warn(
      'EMP_CONFIG_SHELL_NO_EXEC',
      exec.line,
      'exec',
      "with `shell = true` and sockets or `ready = notify`, start the command with `exec ` so the app replaces the shell (a forking shell hides the app's pid from `LISTEN_PID` and `NOTIFY_SOCKET`)",
    );
  }
  if (
    exec !== undefined &&
    argv !== undefined &&
    isUwsgi(argv, shell) &&
    stopSignal !== 'SIGINT' &&
    stopSignal !== 'SIGQUIT' &&
    !exec.value.includes('die-on-term')
  ) {
    issues.warn(
      'EMP_CONFIG_UWSGI_STOP_SIGNAL',
      exec.line,
      'exec',
      `uWSGI treats ${stopSignal} as a reload and keeps running: pass \`--die-on-term\` (and \`--hook-master-start "unix_signal:15 gracefully_kill_them_all"\` to finish requests in flight), or set \`stop-signal = SIGINT\` (a brutal stop)`,
    );
  }
  // gunicorn takes the emperor's sockets from LISTEN_FDS by itself; `--bind fd://3` makes it
  // take fd 3 a second time, and Debian's 20.1 dies at start with EBADF.
  if (
    exec !== undefined &&
    argv !== undefined &&
    sockets.length > 0 &&
    isProgram(argv, shell, 'gunicorn') &&
    /(^|\s)(--bind[= ]|-b ?)fd:\/\//.test(exec.value)
  ) {
    issues.warn(
      'EMP_CONFIG_GUNICORN_BIND_FD',
      exec.line,
      'exec',
      'gunicorn already serves the sockets it inherits (LISTEN_FDS): drop `--bind fd://N`, with which gunicorn 20.1 exits with `OSError: [Errno 9] Bad file descriptor`',
    );
  }

  if (exec === undefined || argv === undefined) return undefined;
  const crons = [...v.all('cron'), ...v.all('unique-cron')]
    .map((c) => c.value)
    .sort((a, b) => a.line - b.line);
  return {
    name: input.name,
    file: input.file,
    exec: exec.value,
    shell,
    argv,
    chdir: v.get('chdir') ?? input.dir,
    env: Object.fromEntries(env), // own properties, even for `__proto__`
    clearEnv: v.get('clear-env') ?? DEFAULTS.clearEnv,
    processes: v.get('processes') ?? DEFAULTS.processes,
    retireNice: v.get('retire-nice') ?? DEFAULTS.retireNice,
    sockets,
    socketMode: v.get('socket-mode') ?? base?.socketMode ?? DEFAULTS.socketMode,
    socketOwner: principals.socketOwner,
    backlog: v.get('backlog') ?? base?.backlog ?? DEFAULTS.backlog,
    onDemand,
    idleMs,
    ready,
    readyTimeoutMs: v.get('ready-timeout') ?? base?.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs,
    reload,
    stopSignal,
    stopTimeoutMs: v.get('stop-timeout') ?? DEFAULTS.stopTimeoutMs,
    restart: v.get('restart') ?? DEFAULTS.restart,
    restartDelayMs,
    restartDelayMaxMs,
    envFiles: v.all('env-file').map((e) => e.value),
    touchReload: v.all('touch-reload').map((e) => e.value),
    user: principals.user,
    group: principals.group,
    umask: v.get('umask') ?? DEFAULTS.umask,
    maxRssBytes: v.get('max-rss'),
    maxLifetimeMs: v.get('max-lifetime'),
    watchdogMs: v.get('watchdog'),
    attachDaemons: v.all('attach-daemon').map((e) => e.value),
    nodes: v.all('nodes').length > 0 ? v.all('nodes').flatMap((e) => e.value) : DEFAULTS.nodes,
    smartAttachDaemons: v.all('smart-attach-daemon').map((e) => e.value),
    crons,
    log: v.get('log'),
    logTimestamps: v.get('log-timestamps') ?? DEFAULTS.logTimestamps,
    logMaxSizeBytes: v.get('log-max-size') ?? DEFAULTS.logMaxSizeBytes,
    logBackups: v.get('log-backups') ?? DEFAULTS.logBackups,
    placeholders: input.placeholders,
    ...(base?.uwsgi === undefined ? {} : { uwsgi: base.uwsgi }),
  };
}

function isUwsgi(argv: readonly string[], shell: boolean): boolean {
  return isProgram(argv, shell, 'uwsgi');
}

/** Whether the command runs `name` (any word of a shell command, else the program). */
function isProgram(argv: readonly string[], shell: boolean, name: string): boolean {
  const words = shell ? (argv[2] ?? '').split(/\s+/) : argv.slice(0, 1);
  return words.some((w) => basename(w) === name);
}

interface Principals {
  user: UserSpec | undefined;
  group: GroupSpec | undefined;
  socketOwner: VassalConfig['socketOwner'];
}

function resolvePrincipals(v: Values, lookup: SystemLookup | undefined, issues: IssueList): Principals {
  const groupGiven = v.first('group');
  const group =
    groupGiven === undefined
      ? undefined
      : resolveGroup(groupGiven.value, lookup, issues, groupGiven.line, 'group');
  let user: UserSpec | undefined;
  const userGiven = v.first('user');
  if (userGiven !== undefined) {
    const p = userGiven.value;
    const name = p.name ?? String(p.id);
    const found = lookup?.user(name);
    if (found !== undefined) {
      user = { name, uid: found.uid, gid: found.gid };
    } else if (p.id !== undefined && group !== undefined) {
      user = { name, uid: p.id, gid: group.gid };
    } else if (p.id !== undefined) {
      if (!v.invalid('group')) {
        issues.error(
          'EMP_CONFIG_USER_NEEDS_GROUP',
          userGiven.line,
          'user',
          `user ${p.id} has no passwd entry, so its group is unknown: add \`group = GROUP\``,
        );
      }
    } else {
      issues.error('EMP_CONFIG_UNKNOWN_USER', userGiven.line, 'user', unknownMessage('user', name, lookup));
    }
  }
  let socketOwner: Principals['socketOwner'];
  const ownerGiven = v.first('socket-owner');
  if (ownerGiven !== undefined) {
    const { user: u, group: g } = ownerGiven.value;
    let uid: number | undefined;
    if (u?.id !== undefined) uid = u.id;
    else if (u?.name !== undefined) {
      uid = lookup?.user(u.name)?.uid;
      if (uid === undefined)
        issues.error(
          'EMP_CONFIG_UNKNOWN_USER',
          ownerGiven.line,
          'socket-owner',
          unknownMessage('user', u.name, lookup),
        );
    }
    const gid =
      g === undefined ? undefined : resolveGroup(g, lookup, issues, ownerGiven.line, 'socket-owner')?.gid;
    socketOwner = { uid, gid };
  }
  return { user, group, socketOwner };
}

function resolveGroup(
  p: Principal,
  lookup: SystemLookup | undefined,
  issues: IssueList,
  line: number,
  key: string,
): GroupSpec | undefined {
  if (p.id !== undefined) return { name: String(p.id), gid: p.id };
  const found = lookup?.group(p.name);
  if (found !== undefined) return { name: p.name, gid: found.gid };
  issues.error('EMP_CONFIG_UNKNOWN_GROUP', line, key, unknownMessage('group', p.name, lookup));
  return undefined;
}

function unknownMessage(kind: 'user' | 'group', name: string, lookup: SystemLookup | undefined): string {
  return lookup === undefined
    ? `cannot resolve ${kind} \`${name}\` here (no system lookup): use a numeric id`
    : `unknown ${kind} \`${name}\`: the system has no such ${kind} (getent ${kind === 'user' ? 'passwd' : 'group'} ${name})`;
}
