// `GET /v1/vassals/NAME/logs`: the last lines of a vassal's log file, then (follow) everything
// written after, through the socket, so the operator needs no access to the log directory. The
// log of a vassal that is gone stays readable while its file exists.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Emperor } from '../emperor.js';
import type { VassalLog } from '../os/vassal-log.js';

/** At most this much of the file is read backwards to find the last lines. */
const MAX_TAIL_BYTES = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;
/** Output queued for a slow follower beyond this is skipped (and said so), never held. */
export const MAX_FOLLOWER_BACKLOG = 4 * 1024 * 1024;
export const MAX_LINES = 100_000;

/**
 * Answers a logs request for `name`: a running vassal's log (and, following, what it writes
 * next), or the log file a vassal that is gone left behind, marked `x-emperor-vassal: gone`.
 * False when there is no log to show (the caller says why: unknown name, a file with errors).
 */
export function serveLogs(
  emp: Emperor,
  name: string,
  { lines, following }: { lines: number; following: boolean },
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const runner = emp.reconciler.runners.get(name);
  if (runner && !runner.disposed) {
    const { log } = runner;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-emperor-log': log.path });
    if (!following) {
      res.end(readTail(log.path, lines));
      return true;
    }
    req.socket.setTimeout(0);
    // Subscribe and read the file in the same tick: no byte is missed or repeated.
    const { size } = follow(log, res, () => undefined);
    res.write(readTail(log.path, lines, size));
    return true;
  }
  // A file with errors that never started: its own message is more useful than an old log.
  if (emp.reconciler.errors.has(name)) return false;
  const path = emp.goneLogPath(name);
  if (path === undefined) return false;
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'x-emperor-log': path,
    'x-emperor-vassal': 'gone',
  });
  // Nothing writes to it any more: following ends here too.
  res.end(readTail(path, lines));
  return true;
}

/** The last `lines` lines of `path` within its first `size` bytes (all of it when undefined). */
export function readTail(path: string, lines: number, size?: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0); // no output yet
  }
  try {
    const end = size ?? fstatSync(fd).size;
    if (lines <= 0 || end === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let pos = end;
    let newlines = 0;
    let start = 0;
    // A final line without `\n` counts as a line; the `\n` ending the file does not start one.
    let skipLast = true;
    outer: while (pos > 0 && end - pos < MAX_TAIL_BYTES) {
      const len = Math.min(CHUNK, pos);
      const buf = Buffer.allocUnsafe(len);
      const n = readSync(fd, buf, 0, len, pos - len);
      pos -= len;
      const chunk = buf.subarray(0, n);
      parts.unshift(chunk);
      for (let i = chunk.length - 1; i >= 0; i--) {
        if (chunk[i] !== 0x0a) continue;
        if (skipLast && pos + i === end - 1) continue;
        if (++newlines === lines) {
          start = pos + i + 1;
          break outer;
        }
      }
      skipLast = false;
    }
    if (newlines < lines) start = pos;
    return Buffer.concat(parts).subarray(start - pos);
  } finally {
    closeSync(fd);
  }
}

/** Streams what `log` writes from now on to `res` until the client goes away. */
export function follow(log: VassalLog, res: ServerResponse, onEnd: () => void): { size: number | undefined } {
  let skipped = 0;
  const sub = log.subscribe(
    (chunk) => {
      if (res.writableLength > MAX_FOLLOWER_BACKLOG) {
        skipped += chunk.length;
        return;
      }
      if (skipped > 0) {
        res.write(`[emperor] skipped ${skipped} bytes: this reader was too slow\n`);
        skipped = 0;
      }
      res.write(chunk);
    },
    () => {
      // The vassal is gone (its file removed): end the stream rather than hang.
      res.end();
    },
  );
  const end = (): void => {
    sub.unsubscribe();
    onEnd();
  };
  res.once('close', end);
  return { size: sub.size };
}
