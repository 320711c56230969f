import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

/** The emperor's own log: pino JSON on stdout, pretty on a TTY (docs/logging.md). */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  // No base fields: `pid` in a line is always the instance's, never the emperor's.
  const base = { level: options.level ?? 'info', base: null, messageKey: 'msg' };
  if (options.pretty ?? process.stdout.isTTY) {
    // Loaded only for a terminal: a service's emperor (stdout a pipe or journald) never pays its memory.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(base, pretty({ colorize: true, ignore: 'pid,hostname', messageKey: 'msg', sync: true }));
  }
  return pino(base, pino.destination({ dest: 1, sync: false }));
}
