// Turns the addon's raw failures (errno + syscall) into errors that name the address involved.
import { getSystemErrorMap } from 'node:util';

/** What every failure of this package throws: `code` is the errno name (`EADDRINUSE`, `ENOENT`, ...). */
export interface SocketError extends Error {
  code: string;
  errno: number;
  syscall: string;
  /** The address as the emperor prints it: `127.0.0.1:8080`, `[::]:8080`, `unix:/run/app.sock`, `@name`. */
  address: string;
}

interface RawError extends Error {
  errno: number;
  syscall: string;
}

function isRawError(error: unknown): error is RawError {
  return error instanceof Error && typeof (error as Partial<RawError>).errno === 'number';
}

/** Explanations better than strerror for the cases a user can fix; keyed by errno name. */
export type Hints = Partial<Record<string, string>>;

/**
 * `cannot bind 127.0.0.1:8080: address already in use (EADDRINUSE)`. Errors that are not system
 * errors (a TypeError for a bad argument) pass through unchanged.
 */
export function socketError(error: unknown, action: string, address: string, hints: Hints = {}): unknown {
  if (!isRawError(error)) return error;
  return makeSocketError(error.errno, error.syscall, action, address, hints, error.message);
}

export function makeSocketError(
  errno: number,
  syscall: string,
  action: string,
  address: string,
  hints: Hints = {},
  reason?: string,
): SocketError {
  // libuv's table gives Node's usual names and lowercase messages ("address already in use").
  const [code, message] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, lowerFirst(reason ?? 'error')];
  const text = hints[code] ?? message;
  const error = new Error(`cannot ${action} ${address}: ${text} (${code})`) as SocketError;
  return Object.assign(error, { code, errno, syscall, address });
}

/** `ENOENT` for 2: libuv's names, the ones Node's own errors carry in `code`. */
export function errnoName(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[0] ?? `E${errno}`;
}

/** A raw failure of the addon with `code` set to its errno's name; anything else unchanged. */
export function withErrnoCode(error: unknown): unknown {
  const errno = (error as { errno?: unknown }).errno;
  return typeof errno === 'number' ? Object.assign(error as Error, { code: errnoName(errno) }) : error;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
