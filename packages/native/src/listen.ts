// Listening sockets the emperor binds and holds without ever accepting on them.
import { lstatSync, statSync, unlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { addon } from './binding.js';
import { socketError, type SocketError } from './errors.js';
import { OwnedFd } from './owned-fd.js';

/** sizeof(sockaddr_un.sun_path) minus its terminating NUL. */
export const UNIX_PATH_MAX = 107;

export interface TcpOptions {
  /** A numeric IPv4 or IPv6 address. Omitted: all addresses, dual-stack `::` where IPv6 exists, else `0.0.0.0`. */
  host?: string;
  /** 0 asks the kernel for a free port; `port` on the result tells which. */
  port: number;
  backlog: number;
  /** For an IPv6 host: accept IPv6 only. Default false, so `::` also takes IPv4 clients. */
  ipv6Only?: boolean;
}

export interface UnixOptions {
  path: string;
  backlog: number;
  /** Permissions of the socket file, set before listen(). Default: what the umask gives. */
  mode?: number;
  /** Owner and group of the socket file, set before listen(). Default: unchanged. */
  uid?: number;
  gid?: number;
}

interface UnixFile {
  path: string;
  dev: number;
  ino: number;
}

export class ListeningSocket extends OwnedFd {
  /** The TCP port actually bound, or undefined for a unix socket. */
  readonly port: number | undefined;
  readonly #unixFile: UnixFile | undefined;

  /** @internal use bindTcp or bindUnix */
  constructor(fd: number, address: string, port: number | undefined, unixFile?: UnixFile) {
    super(fd, address);
    this.port = port;
    this.#unixFile = unixFile;
  }

  /** True when a client waits in the backlog. Nothing is accepted: the client stays for the app. */
  hasPendingConnection(): boolean {
    this.assertOpen('poll');
    try {
      return addon().pollReadable(this.fd);
    } catch (error) {
      throw socketError(error, 'poll', this.address);
    }
  }

  /** A unix socket's file is removed on close, unless something else has replaced it since. */
  protected override afterClose(): void {
    const file = this.#unixFile;
    if (!file) return;
    try {
      const st = lstatSync(file.path);
      if (st.isSocket() && st.dev === file.dev && st.ino === file.ino) unlinkSync(file.path);
    } catch {
      // already gone, or not ours to remove: either way nothing to clean up
    }
  }
}

/** `host:port` as users write it, with IPv6 hosts in brackets. */
export function formatTcpAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * socket + SO_REUSEADDR + bind + listen, close-on-exec and non-blocking (as systemd passes
 * sockets). Throws a SocketError such as `cannot bind 127.0.0.1:8080: address already in use (EADDRINUSE)`.
 */
export function bindTcp(options: TcpOptions): ListeningSocket {
  const { host, port, backlog, ipv6Only = false } = options;
  checkInteger('port', port, 0, 65535);
  checkInteger('backlog', backlog, 1, 2 ** 31 - 1);
  if (host !== undefined) {
    if (isIP(host) === 0)
      throw new TypeError(`Expected \`host\` to be a numeric IP address, got ${JSON.stringify(host)}`);
    return bindTcpHost(host, port, backlog, ipv6Only);
  }
  try {
    return bindTcpHost('::', port, backlog, ipv6Only);
  } catch (error) {
    // No IPv6 on this host (disabled in the kernel or on every interface): all IPv4 addresses.
    const code = (error as Partial<SocketError>).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw error;
    return bindTcpHost('0.0.0.0', port, backlog, ipv6Only);
  }
}

function bindTcpHost(host: string, port: number, backlog: number, ipv6Only: boolean): ListeningSocket {
  try {
    const bound = addon().bindTcp(host, port, backlog, ipv6Only);
    return new ListeningSocket(bound.fd, formatTcpAddress(host, bound.port), bound.port);
  } catch (error) {
    throw socketError(error, 'bind', formatTcpAddress(host, port));
  }
}

/**
 * Binds a unix stream socket. A socket file left behind by a dead process (connect() is refused)
 * is replaced; a live one is EADDRINUSE; a file that is not a socket is never removed (EEXIST).
 */
export function bindUnix(options: UnixOptions): ListeningSocket {
  const { path, backlog, mode = -1, uid = -1, gid = -1 } = options;
  const address = `unix:${path}`;
  checkInteger('backlog', backlog, 1, 2 ** 31 - 1);
  if (mode !== -1) checkInteger('mode', mode, 0, 0o7777);
  if (uid !== -1) checkInteger('uid', uid, 0, 2 ** 31 - 1);
  if (gid !== -1) checkInteger('gid', gid, 0, 2 ** 31 - 1);
  const bytes = Buffer.byteLength(path);
  const hints = {
    ENAMETOOLONG: `the path is ${bytes} bytes long, unix sockets allow at most ${UNIX_PATH_MAX}`,
    ENOENT: `directory ${dirname(path)} does not exist`,
    EEXIST: 'a file that is not a socket is in the way, refusing to remove it',
    EADDRINUSE: 'address already in use: another process is listening on it',
  };
  let fd: number;
  try {
    if (path === '' || path.includes('\0'))
      throw new TypeError(`Expected \`path\` to be a file path, got ${JSON.stringify(path)}`);
    fd = addon().bindUnix(path, backlog, mode, uid, gid);
  } catch (error) {
    throw socketError(error, 'bind', address, hints);
  }
  let file: UnixFile;
  try {
    // Remember which file we created, so close() never removes a successor's socket.
    const st = statSync(path);
    file = { path, dev: st.dev, ino: st.ino };
  } catch (error) {
    addon().closeFd(fd);
    throw socketError(error, 'bind', address);
  }
  return new ListeningSocket(fd, address, undefined, file);
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}
