import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

/** The emperor's own log: pino JSON on stdout, pretty on a TTY when pino-pretty is installed (docs/logging.md). */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  // No base fields: `pid` in a line is always the instance's, never the emperor's.
  const base = { level: options.level ?? 'info', base: null, messageKey: 'msg' };
  const pretty = (options.pretty ?? process.stdout.isTTY) ? loadPretty() : undefined;
  if (pretty)
    return pino(base, pretty({ colorize: true, ignore: 'pid,hostname', messageKey: 'msg', sync: true }));
  return pino(base, pino.destination({ dest: 1, sync: false }));
}

/**
 * pino-pretty is an optional peer (a checkout has it; `npm i -g emperor` does not install it):
 * loaded only for a terminal, so a service's emperor (stdout a pipe or journald) never pays its
 * memory; absent, the terminal gets the same JSON lines as the journal.
 */
function loadPretty(): typeof PinoPretty | undefined {
  try {
    return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}
