// Inherited listening sockets, read as sd_listen_fds(3) reads them: fds 3 .. 3+LISTEN_FDS-1,
// meant for us only when LISTEN_PID is our own pid (a child that inherited the variables is not
// the addressee).
import type { AddressInfo, Server } from 'node:net';
import { VassalError } from './errors.js';

/** The first inherited fd, as in systemd's SD_LISTEN_FDS_START. */
export const LISTEN_FDS_START = 3;

/** The emperor's default `backlog`: Node's `listen({ fd })` would otherwise reset it to 511. */
export const DEFAULT_BACKLOG = 1024;

export interface InheritedSocket {
  readonly fd: number;
  /** The `name=` prefix of its `socket` line, else the vassal's name; `unknown` when unnamed. */
  readonly name: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const DIGITS = /^[0-9]+$/;

/** The sockets passed to this process; empty unless LISTEN_PID is this process's pid. */
export function listenFds(env: Env = process.env, pid: number = process.pid): InheritedSocket[] {
  const listenPid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  if (listenPid === undefined || !DIGITS.test(listenPid) || Number(listenPid) !== pid) return [];
  if (count === undefined || !DIGITS.test(count)) return [];
  const n = Number(count);
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  return Array.from({ length: n }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: names[i] !== undefined && names[i] !== '' ? names[i] : 'unknown',
  }));
}

export interface ListenOptions {
  /** Which inherited socket: its LISTEN_FDNAMES entry. Default: the first one. */
  readonly name?: string;
  /** Without an inherited socket and without `PORT` in the environment: listen on this port. */
  readonly port?: number;
  /** Without an inherited socket: the address to bind (Node's default: all addresses). */
  readonly host?: string;
  /** Listen backlog; applies to inherited sockets too, since Node's listen() sets it again. */
  readonly backlog?: number;
  readonly env?: Env;
}

export interface Listening {
  /** True when serving on a socket the emperor passed; false when bound here from `PORT`. */
  readonly inherited: boolean;
  readonly fd: number | undefined;
  readonly name: string | undefined;
  /** `server.address()`: null for an inherited unix socket (Node cannot tell its path). */
  readonly address: AddressInfo | string | null;
}

function parsePort(value: string, from: string): number {
  const port = DIGITS.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new VassalError(
      'EMP_SDK_BAD_PORT',
      `${from} is \`${value}\`: expected a port number from 0 to 65535`,
    );
  }
  return port;
}

type Target =
  | { readonly fd: number; readonly name: string }
  | { readonly port: number; readonly host: string | undefined };

function target(options: ListenOptions): Target {
  const env = options.env ?? process.env;
  const fds = listenFds(env);
  if (fds.length > 0) {
    const wanted = options.name;
    const found = wanted === undefined ? fds[0] : fds.find((s) => s.name === wanted);
    if (!found) {
      const names = fds.map((s) => `\`${s.name}\``).join(', ');
      throw new VassalError(
        'EMP_SDK_SOCKET_NAME',
        `no inherited socket is named \`${wanted ?? ''}\` (LISTEN_FDNAMES has ${names}): write \`socket = ${wanted ?? 'NAME'}=ADDRESS\` in the vassal file, or pass one of those names`,
      );
    }
    return found;
  }
  if (env.PORT !== undefined && env.PORT !== '')
    return { port: parsePort(env.PORT, 'PORT'), host: options.host };
  if (options.port !== undefined)
    return { port: parsePort(String(options.port), 'the port option'), host: options.host };
  throw new VassalError(
    'EMP_SDK_NO_SOCKET',
    'nothing to listen on: no socket inherited from the emperor (LISTEN_FDS, LISTEN_PID) and no PORT: add `socket = HOST:PORT` to the vassal file, set PORT, or pass { port }',
  );
}

/**
 * Listens on the socket the emperor passed (by name, or the first), else on `PORT` (then
 * `options.port`). Resolves once the server is listening; rejects with the listen error.
 */
export async function listen(server: Server, options: ListenOptions = {}): Promise<Listening> {
  const where = target(options);
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      // The backlog goes as a separate argument: listen({ fd }) ignores options.backlog (Node 20).
      if ('fd' in where) server.listen({ fd: where.fd }, backlog);
      else
        server.listen({
          port: where.port,
          backlog,
          ...(where.host !== undefined ? { host: where.host } : {}),
        });
    } catch (err) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
  const address = server.address();
  return 'fd' in where
    ? { inherited: true, fd: where.fd, name: where.name, address }
    : { inherited: false, fd: undefined, name: undefined, address };
}
