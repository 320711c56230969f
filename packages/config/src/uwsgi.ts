// A `[uwsgi]` vassal file (no `[vassal]` section): uWSGI's own config, run unchanged as
// `uwsgi --ini FILE`. The emperor reads only what it needs to supervise it: the addresses uWSGI
// listens on, so that it can own them and roll reloads. Everything else stays uWSGI's business.
import { isIPv4, isIPv6 } from 'node:net';
import { basename, dirname, extname } from 'node:path';
import { DEFAULTS } from './defaults.js';
import type { IssueList } from './issue.js';
import type { RawEntry } from './read-lines.js';
import { UNIX_PATH_MAX } from './socket-address.js';
import type { ParseOptions, SocketSpec, UwsgiListener, VassalConfig } from './types.js';

/** The first fd of owned sockets in an instance (sd_listen_fds' SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

// Options whose value is an address uWSGI's workers accept on, with the protocol the key gives.
// `https-socket` and `suwsgi-socket` take `ADDR,CERT,KEY[,...]`: the address is the first field.
const WORKER_SOCKETS = new Set([
  'socket',
  'uwsgi-socket',
  'http-socket',
  'http11-socket',
  'https-socket',
  'fastcgi-socket',
  'fastcgi-nph-socket',
  'scgi-socket',
  'scgi-nph-socket',
  'raw-socket',
  'puwsgi-socket',
  'suwsgi-socket',
  'ssl-socket',
]);
const PLUGIN_KEYS = new Set(['plugin', 'plugins', 'need-plugin', 'need-plugins']);
const WITH_CERT = new Set(['https-socket', 'suwsgi-socket', 'ssl-socket']);

// Addresses uWSGI binds outside its worker sockets; a second master started next to the first
// (a rolling reload) could not bind them, so their presence makes the vassal reload in place.
const OTHER_LISTENERS: Readonly<Record<string, string>> = {
  'shared-socket': 'a shared socket is bound by the master and used as `=N`',
  'undeferred-shared-socket': 'a shared socket is bound by the master and used as `=N`',
  http: "`http` starts uWSGI's HTTP router, a process of its own that binds the address",
  https: "`https` starts uWSGI's HTTPS router, a process of its own that binds the address",
  fastrouter: 'the fastrouter is a process of its own that binds the address',
  rawrouter: 'the rawrouter is a process of its own that binds the address',
  sslrouter: 'the sslrouter is a process of its own that binds the address',
  stats: 'the stats server is bound by the master',
  'stats-server': 'the stats server is bound by the master',
  udp: 'the UDP server is bound by the master',
  snmp: 'the SNMP server is bound by the master',
  'zerg-server': 'the zerg server is bound by the master',
};

// Keys that make the rest of the file uncertain: uWSGI reads more config, or only some lines.
const INCLUDES = new Set(['ini', 'include', 'inherit', 'xml', 'yaml', 'yml', 'json', 'js', 'config']);
const isBlock = (key: string): boolean =>
  key.startsWith('if-') || key === 'endif' || key === 'for' || key.startsWith('for-') || key === 'endfor';

/** Why no socket of the file is owned, when the file as a whole is uncertain; else undefined. */
function fileUncertainty(entries: readonly RawEntry[]): string | undefined {
  for (const e of entries) {
    if (INCLUDES.has(e.key))
      return `\`${e.key} = ${e.value}\` (line ${e.line}) includes config the emperor does not read`;
    if (isBlock(e.key))
      return `\`${e.key}\` (line ${e.line}) makes lines depend on what uWSGI finds at run time`;
    if (e.value.includes('@('))
      return `\`${e.key}\` (line ${e.line}) reads a file or command with \`@(...)\``;
  }
  return undefined;
}

interface Expanded {
  readonly value: string;
  /** Why the value is not certain, when it is not. */
  readonly uncertain: string | undefined;
}

/**
 * uWSGI's magic variables and `$(ENV)` (expanded as it reads the file), then `%(key)` with the
 * first value of that key, as uWSGI's later pass does; an unknown `%(x)` stays literal.
 */
function expander(
  options: ParseOptions,
): (value: string, lookup: (key: string) => string | undefined) => Expanded {
  const file = options.file;
  const dir = dirname(file);
  const ext = extname(file);
  const magic: Readonly<Record<string, string>> = {
    p: file,
    o: file,
    O: file,
    s: basename(file),
    d: dir.endsWith('/') ? dir : `${dir}/`,
    e: ext,
    n: basename(file, ext),
    c: basename(dir),
    k: String(options.cpus),
    '%': '%',
  };
  return (value, lookup) => {
    let uncertain: string | undefined;
    let out = value.replace(/\$\(([^)]*)\)/g, (whole, name: string) => {
      const v = options.env[name];
      if (v === undefined) uncertain ??= `\`$(${name})\` is not set in the emperor's environment`;
      return v ?? whole;
    });
    out = out.replace(/%(\([^)]*\)|.)/g, (whole, what: string) => {
      if (what.startsWith('(')) {
        const key = what.slice(1, -1);
        const v = key.includes(' ') ? undefined : lookup(key);
        if (v === undefined) uncertain ??= `\`${whole}\` is not a key of the file`;
        return v ?? whole;
      }
      const m = Object.hasOwn(magic, what) ? magic[what] : undefined;
      if (m === undefined) uncertain ??= `\`${whole}\` is a magic variable the emperor does not expand`;
      return m ?? whole;
    });
    return { value: out, uncertain };
  };
}

/**
 * An address as uWSGI would recognize the fd it inherits: uWSGI names an inherited socket by
 * getsockname() (`127.0.0.1:8080`, `:8080` for 0.0.0.0, `[::1]:8080`, `/path`) and skips binding
 * a configured one of exactly that name. Anything written differently would be bound a second time.
 */
function ownable(address: string, line: number): SocketSpec | string {
  const spec = addressSpec(address, line);
  if (typeof spec === 'string') return spec;
  if (spec.kind === 'tcp' && spec.address.startsWith('0.0.0.0:') && !address.startsWith(':'))
    return `uWSGI names 0.0.0.0 \`:${spec.port}\`: write \`:${spec.port}\` to let the emperor own it`;
  return spec;
}

/** The address uWSGI would bind, as a SocketSpec (for conflicts), or why it cannot be known. */
function addressSpec(address: string, line: number): SocketSpec | string {
  if (address.startsWith('/')) {
    if (address.includes(':')) return 'uWSGI reads a path with `:` as HOST:PORT';
    if (Buffer.byteLength(address) > UNIX_PATH_MAX) return `the path is over ${UNIX_PATH_MAX} bytes`;
    return { kind: 'unix', name: undefined, path: address, address: `unix:${address}`, line };
  }
  if (address.startsWith('@')) return 'an abstract unix socket';
  if (address.includes('://')) return 'uWSGI resolves this address itself';
  if (address.startsWith('=')) return 'it names a shared socket (`=N`)';
  const colon = address.lastIndexOf(':');
  if (colon < 0) return 'a relative unix path, bound from the directory uWSGI is in at that time';
  const host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    return 'the port is not a number from 1 to 65535 (port 0 is chosen by uWSGI)';
  const port = Number(portText);
  // uWSGI binds `:PORT` on IPv4 only; the emperor's own `:PORT` would be dual-stack `::`.
  if (host === '' || host === '0.0.0.0')
    return { kind: 'tcp', name: undefined, host: '0.0.0.0', port, address: `0.0.0.0:${port}`, line };
  if (isIPv4(host)) {
    if (host.split('.').some((o) => o.length > 1 && o.startsWith('0')))
      return 'write the address without leading zeros';
    return { kind: 'tcp', name: undefined, host, port, address, line };
  }
  if (host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1))) {
    const v6 = host.slice(1, -1);
    if (new URL(`http://[${v6}]/`).hostname !== `[${v6}]`) return 'write the IPv6 address in its short form';
    return { kind: 'tcp', name: undefined, host: v6, port, address, line };
  }
  return `\`${host}\` is a name uWSGI resolves itself, not an IP address`;
}

/** How a `[vassal]` section beside the `[uwsgi]` one changes what the emperor owns. */
export interface UwsgiUnder {
  /** Why the emperor owns no address of the `[uwsgi]` section (a `[vassal]` `exec` of its own). */
  readonly ownNothing?: string;
  /** Sockets of the `[vassal]` section, at fd 3 on, before anything this file adds. */
  readonly vassalSockets?: number;
}

/** The VassalConfig that runs a `[uwsgi]` file with uWSGI; problems are warnings in `issues`. */
export function uwsgiVassal(
  entries: readonly RawEntry[],
  name: string,
  options: ParseOptions,
  issues: IssueList,
  under: UwsgiUnder = {},
): VassalConfig {
  const expand = expander(options);
  const values: { key: string; value: string; line: number }[] = [];
  const lineOf = (v: { line: number }): number => v.line;
  const lookup = (key: string): string | undefined => {
    const direct = values.find((v) => v.key === key)?.value ?? entries.find((e) => e.key === key)?.value;
    if (direct !== undefined) return direct;
    // `set-placeholder = NAME=VALUE` (also `set-ph`) defines a placeholder that is no option.
    for (const v of values) {
      if (v.key !== 'set-placeholder' && v.key !== 'set-ph') continue;
      const eq = v.value.indexOf('=');
      if (eq > 0 && v.value.slice(0, eq) === key) return v.value.slice(eq + 1);
    }
    return undefined;
  };
  const listeners: UwsgiListener[] = [];
  for (const e of entries) {
    const x = expand(e.value, lookup);
    values.push({ key: e.key, value: x.value, line: e.line });
    const other = OTHER_LISTENERS[e.key];
    if (!WORKER_SOCKETS.has(e.key) && other === undefined) continue;
    const [address = '', ...rest] = WITH_CERT.has(e.key) ? x.value.split(',') : [x.value];
    const parsed = x.uncertain === undefined ? addressSpec(address, e.line) : undefined;
    const listener = {
      key: e.key,
      value: x.value,
      address,
      line: e.line,
      ...(typeof parsed === 'object' ? { bound: parsed } : {}),
    };
    if (under.ownNothing !== undefined)
      listeners.push({ ...listener, owned: false, reason: under.ownNothing });
    else if (other !== undefined) listeners.push({ ...listener, owned: false, reason: other });
    else if (x.uncertain !== undefined) listeners.push({ ...listener, owned: false, reason: x.uncertain });
    else if (/[\s,]/.test(address))
      listeners.push({
        ...listener,
        owned: false,
        reason: 'the value has options the emperor does not read',
      });
    else if (address.startsWith('/') && entries.some((c) => c.key === 'chown-socket'))
      listeners.push({ ...listener, owned: false, reason: '`chown-socket` is applied by uWSGI as it binds' });
    else {
      const spec = ownable(address, e.line);
      listeners.push(
        typeof spec === 'string'
          ? { ...listener, owned: false, reason: spec }
          : { ...listener, owned: true, reason: undefined, spec, rest: rest.join(',') },
      );
    }
  }

  // Own all of them or none: a second master could not bind the one left to uWSGI, so a rolling
  // reload needs every listening address in the emperor's hands.
  const whole = under.ownNothing === undefined ? fileUncertainty(entries) : undefined;
  const blocker = whole ?? listeners.find((l) => !l.owned)?.reason;
  const owned = blocker === undefined ? listeners.filter((l) => l.owned) : [];
  const final: UwsgiListener[] = listeners.map((l) =>
    l.owned && blocker !== undefined
      ? {
          key: l.key,
          value: l.value,
          address: l.address,
          line: l.line,
          ...(l.bound === undefined ? {} : { bound: l.bound }),
          owned: false,
          reason: whole ?? `another address of the file is not owned (${blocker})`,
        }
      : l,
  );
  for (const l of final) {
    if (!l.owned)
      issues.warn(
        'EMP_CONFIG_UWSGI_NOT_OWNED',
        l.line,
        l.key,
        `uWSGI binds \`${l.key} = ${l.value}\` itself (${l.reason}): a reload is uWSGI's graceful SIGHUP, not a rolling one`,
      );
  }
  if (final.length === 0 && whole !== undefined && under.vassalSockets === undefined)
    issues.warn(
      'EMP_CONFIG_UWSGI_NOT_OWNED',
      undefined,
      undefined,
      `the emperor owns no socket of this file (${whole}): a reload is uWSGI's graceful SIGHUP, not a rolling one`,
    );

  const sockets: SocketSpec[] = [];
  const handover: string[] = [];
  for (const l of owned) {
    const fd = LISTEN_FDS_START + sockets.length;
    sockets.push(l.spec);
    handover.push(`--${l.key}`, l.rest === '' ? `fd://${fd}` : `fd://${fd},${l.rest}`);
  }
  // uWSGI says READY=1 from the master before it forks a worker. Preforking, the app is loaded
  // by then and connections wait in the queue for the fork. With `lazy-apps` each worker loads
  // the app after the fork: ready is then when worker 1 accepts (what uWSGI's own Emperor waits
  // for), written to EMPEROR_NOTIFY_FD. Not after `uid`/`gid`: a process that changed its uid
  // cannot open its own /proc/self/fd.
  const lazy = values.some((v) => (v.key === 'lazy-apps' || v.key === 'lazy') && isTrue(v.value));
  const dropsPrivileges = values.some((v) => v.key === 'uid' || v.key === 'gid');
  const readyFromWorker = lazy && !dropsPrivileges;
  const gate = readyFromWorker
    ? [
        '--hook-accepting1-once',
        `writen:/proc/self/fd/${LISTEN_FDS_START + (under.vassalSockets ?? 0) + sockets.length} READY=1`,
      ]
    : [];
  const binary = options.uwsgi ?? 'uwsgi';
  // The hand-over comes before `--ini`: uWSGI 2.0 lists sockets in the order it reads them, and
  // the file's own `KEY = ADDR` then finds a socket of that name already there and is skipped at
  // bind time, but stays in the list with no fd (-1) and no protocol. A worker holding a
  // keep-alive connection polls with timeout 0, and on a poll that returns no event (fd -1)
  // uWSGI takes the first socket whose fd is -1: listed first, the file's line crashed the
  // worker (SIGSEGV in its unset accept); listed after the `fd://N` one, it is never reached.
  // Socket numbers stay the file's order (`map-socket`). No LISTEN_FDS either (spawn-instance):
  // uWSGI would adopt fd N a second time, as a socket of its default `uwsgi` protocol.
  const argv = [
    binary,
    ...handover,
    '--ini',
    options.file,
    // SIGTERM: uWSGI 2.0 reloads on it; these make it a stop that lets requests finish.
    '--die-on-term',
    '--hook-master-start',
    'unix_signal:15 gracefully_kill_them_all',
    ...gate,
  ];
  // uWSGI's `chmod-socket` (bare: 666); without it the socket file gets 777 minus uWSGI's umask.
  const chmod = values.find((v) => v.key === 'chmod-socket')?.value;
  const socketMode = chmod === undefined ? 0o755 : /^[0-7]{3,4}$/.test(chmod) ? parseInt(chmod, 8) : 0o666;
  const backlog = Number(values.find((v) => v.key === 'listen')?.value ?? '100');
  return {
    ...DEFAULTS,
    name,
    file: options.file,
    exec: argv.map(shellWord).join(' '),
    argv,
    chdir: dirname(options.file),
    sockets,
    socketMode,
    backlog: Number.isInteger(backlog) && backlog > 0 ? backlog : 100,
    ready: readyFromWorker ? { kind: 'fd' } : { kind: 'notify' },
    readyTimeoutMs: 60_000,
    reload: sockets.length > 0 ? { kind: 'rolling' } : { kind: 'signal', signal: 'SIGHUP' },
    uwsgi: {
      listeners: final,
      fdsOnArgv: sockets.length > 0,
      plugins: values
        .filter((v) => PLUGIN_KEYS.has(v.key))
        .flatMap((v) =>
          v.value
            .split(/[\s,]+/)
            .filter(Boolean)
            .map((p) => ({ name: p, line: lineOf(v) })),
        ),
      pluginsDirs: values
        .filter((v) => v.key === 'plugins-dir' || v.key === 'plugin-dir')
        .map((v) => v.value),
    },
  };
}

/** uWSGI's booleans: a bare or any other value is true, these are false. */
function isTrue(value: string): boolean {
  return !['false', '0', 'no', 'off'].includes(value.toLowerCase());
}

function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
