// Messages to the emperor on the `ready = fd` channel: the stream named by EMPEROR_NOTIFY_FD,
// one message per line (s6's readiness fd, with sd_notify's KEY=value vocabulary). Writes are
// synchronous: `ready()` returns once the line is in the emperor's pipe, and a write from a
// signal handler or just before process.exit() is not lost.
import { writeSync } from 'node:fs';

type Env = Readonly<Record<string, string | undefined>>;

/** Longest STATUS= text sent: the emperor drops lines over 4096 bytes. */
export const MAX_STATUS_LENGTH = 1024;

/** The fd of the channel, when the emperor opened one (`ready = fd`). */
export function notifyFd(env: Env = process.env): number | undefined {
  const value = env.EMPEROR_NOTIFY_FD;
  if (value === undefined || !/^[0-9]+$/.test(value)) return undefined;
  const fd = Number(value);
  return fd >= 3 ? fd : undefined;
}

/** One line of text: a newline would start another message (and an empty one means READY). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_LENGTH);
}

/**
 * Writes `lines` to the channel. Returns false without a channel, or when it is gone (the
 * emperor exited: EPIPE), so that telling the emperor something never crashes the app.
 */
export function send(lines: readonly string[], env: Env = process.env): boolean {
  const fd = notifyFd(env);
  if (fd === undefined) return false;
  const data = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
  try {
    // A short write is possible on a stream socket interrupted by a signal: write the rest.
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
    return true;
  } catch {
    return false;
  }
}

/**
 * Tells the emperor this instance is ready to serve (`ready = fd`); with `text`, sets its status
 * too. A no-op returning false when the vassal uses another `ready` mode.
 */
export function ready(text?: string, env: Env = process.env): boolean {
  return send([...(text === undefined ? [] : [`STATUS=${oneLine(text)}`]), 'READY=1'], env);
}

/** Sets the status text the emperor keeps for this instance. */
export function status(text: string, env: Env = process.env): boolean {
  return send([`STATUS=${oneLine(text)}`], env);
}

/** Proves the instance is alive, for the vassal's `watchdog` (sd_notify `WATCHDOG=1`). */
export function heartbeat(env: Env = process.env): boolean {
  return send(['WATCHDOG=1'], env);
}
