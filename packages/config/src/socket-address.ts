// `socket` values: `[name=]ADDRESS` where ADDRESS is `HOST:PORT`, `:PORT`, `[V6]:PORT` or
// `unix:PATH`. Hosts are IP literals only: the emperor binds before anything resolves names.
import { isIPv4, isIPv6 } from 'node:net';
import { fail, ok, path, type ConvertContext, type Converted } from './converters.js';
import type { SocketSpec } from './types.js';

// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
export const UNIX_PATH_MAX = 107;
// LISTEN_FDNAMES: colon-separated, so no `:`; systemd allows up to 255 printable characters.
const FD_NAME = /^[A-Za-z0-9_.-]{1,255}$/;
const EXPECTED =
  'expected `HOST:PORT`, `:PORT`, `[IPV6]:PORT` or `unix:/PATH`, optionally prefixed by `name=`';

export function socketAddress(value: string, ctx: ConvertContext, line: number): Converted<SocketSpec> {
  let name: string | undefined;
  let address = value;
  const named = /^([^:=[/]+)=(.*)$/.exec(value);
  if (named?.[1] !== undefined && named[2] !== undefined) {
    if (!FD_NAME.test(named[1]))
      return fail('a socket name (before `=`) is made of letters, digits, `.`, `_` and `-`');
    name = named[1];
    address = named[2];
  }
  if (address.startsWith('unix:')) {
    const raw = address.slice('unix:'.length);
    if (raw === '') return fail(`\`unix:\` needs a path; ${EXPECTED}`);
    const p = path(raw, ctx);
    if (!p.ok) return p;
    const bytes = Buffer.byteLength(p.value);
    if (bytes > UNIX_PATH_MAX) {
      return fail(
        `the unix socket path \`${p.value}\` is ${bytes} bytes; the kernel allows ${UNIX_PATH_MAX}`,
        'EMP_CONFIG_UNIX_PATH_TOO_LONG',
      );
    }
    return ok({ kind: 'unix', name, path: p.value, address, line });
  }
  const colon = address.lastIndexOf(':');
  if (colon < 0) return fail(EXPECTED);
  const hostPart = address.slice(0, colon);
  const port = parsePort(address.slice(colon + 1));
  if (port === undefined) return fail(`the port must be an integer from 1 to 65535; ${EXPECTED}`);
  let host: string;
  if (hostPart === '') {
    host = '::'; // dual-stack wildcard; the daemon falls back to 0.0.0.0 without IPv6
  } else if (hostPart.startsWith('[') && hostPart.endsWith(']') && isIPv6(hostPart.slice(1, -1))) {
    host = hostPart.slice(1, -1);
  } else if (isIPv4(hostPart)) {
    host = hostPart;
  } else if (isIPv6(hostPart)) {
    return fail(`write IPv6 addresses in brackets: \`[${hostPart}]:${port}\``);
  } else if (hostPart === '*') {
    return fail(`write \`:${port}\` for all addresses`);
  } else {
    return fail(
      `\`${hostPart}\` is not an IP address (names are not resolved: use \`127.0.0.1\`, \`[::1]\` or \`:PORT\`)`,
    );
  }
  return ok({ kind: 'tcp', name, host, port, address, line });
}

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

const WILDCARDS = new Set(['::', '0.0.0.0']);

/** True when two owned sockets cannot both be bound (same port on overlapping hosts, same path). */
export function socketsConflict(a: SocketSpec, b: SocketSpec): boolean {
  if (a.kind === 'unix' || b.kind === 'unix')
    return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  if (a.port !== b.port) return false;
  return a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host);
}

/**
 * Finds clashes among many sockets in linear time (a file may hold thousands of `socket`
 * lines): by path for unix sockets, by port then host for TCP, a wildcard host clashing with
 * every other host on its port.
 */
export class SocketIndex<T> {
  readonly #unix = new Map<string, T>();
  readonly #tcp = new Map<number, { hosts: Map<string, T>; wildcard: T | undefined }>();

  /** The payload of an earlier socket that clashes with `s`, or undefined after adding `s`. */
  claim(s: SocketSpec, payload: T): T | undefined {
    if (s.kind === 'unix') {
      const clash = this.#unix.get(s.path);
      if (clash === undefined) this.#unix.set(s.path, payload);
      return clash;
    }
    let port = this.#tcp.get(s.port);
    if (port === undefined) {
      port = { hosts: new Map(), wildcard: undefined };
      this.#tcp.set(s.port, port);
    }
    const wild = WILDCARDS.has(s.host);
    const clash =
      port.wildcard ?? port.hosts.get(s.host) ?? (wild ? port.hosts.values().next().value : undefined);
    if (clash !== undefined) return clash;
    port.hosts.set(s.host, payload);
    if (wild) port.wildcard = payload;
    return undefined;
  }
}
