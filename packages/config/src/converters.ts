// One converter per value type, as Supervisor's datatypes.py: each takes the expanded value and
// returns the typed value or what was expected. The caller adds the file, line and key.
import { nodeGlob } from './node-glob.js';
import { constants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { ErrorCode } from './errors.js';
import { suggest } from './suggest.js';
import type { ReadySpec, ReloadSpec, SignalName } from './types.js';

export type Converted<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string; readonly code?: ErrorCode };

/** What converters may know besides the value: nothing that needs I/O. */
export interface ConvertContext {
  /** Absolute directory of the vassal file, for relative paths. */
  readonly dir: string;
  readonly cpus: number;
}

export type Converter<T> = (value: string, ctx: ConvertContext) => Converted<T>;

export function ok<T>(value: T): Converted<T> {
  return { ok: true, value };
}

export function fail<T>(message: string, code?: ErrorCode): Converted<T> {
  return code === undefined ? { ok: false, message } : { ok: false, message, code };
}

/** `nodes`: one or more globs of node names, separated by spaces or commas. */
export function nodeGlobs(value: string): Converted<string[]> {
  const globs = value.split(/[\s,]+/).filter((g) => g !== '');
  for (const g of globs) {
    const r = nodeGlob(g);
    if (!r.ok) return fail(r.message);
  }
  return ok(globs);
}

export function text(value: string): Converted<string> {
  return ok(value);
}

const DIGITS = /^[0-9]+$/;

export function integer(min: number, max: number): Converter<number> {
  return (value) => {
    const n = DIGITS.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      return fail(`expected an integer from ${min} to ${max}`);
    return ok(n);
  };
}

const TRUE = ['true', 'yes', 'on', '1'];
const FALSE = ['false', 'no', 'off', '0'];

export function boolean(value: string): Converted<boolean> {
  const v = value.toLowerCase();
  if (TRUE.includes(v)) return ok(true);
  if (FALSE.includes(v)) return ok(false);
  return fail('expected `true` or `false` (also yes/no, on/off, 1/0)');
}

const SIZE = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?$/i;
const UNITS: Readonly<Record<string, number>> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * Sizes in bytes with binary multipliers, as uWSGI and Supervisor read `512K`, `100M`, `2G`. A
 * bare number other than 0 is refused: `512` is bytes to Supervisor but MiB to uWSGI's
 * `reload-on-rss`, and guessing wrong recycles every instance at once. `512B` says bytes.
 */
export function size(min: number, { uwsgiMiB = false } = {}): Converter<number> {
  return (value) => {
    if (DIGITS.test(value) && Number(value) !== 0) return fail(bareSizeMessage(value, uwsgiMiB));
    const m = SIZE.exec(value);
    const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
    const bytes = m === null || unit === undefined ? NaN : Math.floor(Number(m[1]) * unit);
    if (!Number.isSafeInteger(bytes)) {
      return fail('expected a size with a unit: `512K`, `100M`, `2G`, or `512B` for bytes');
    }
    if (bytes < min) return fail('expected a size more than 0');
    return ok(bytes);
  };
}

/** `uwsgiMiB`: the key stands for uWSGI's `reload-on-rss`, whose bare number is MiB (its
 * `log-maxsize`, by contrast, is bytes: no such hint for a log size). */
function bareSizeMessage(n: string, uwsgiMiB: boolean): string {
  const bytes = Number(n);
  let same = '';
  for (const [unit, factor] of [...Object.entries(UNITS)].reverse())
    if (unit !== '' && bytes >= factor && bytes % factor === 0) {
      same = `, that is \`${bytes / factor}${unit.toUpperCase()}\``;
      break;
    }
  const mib = uwsgiMiB ? ` (as uWSGI's \`reload-on-rss = ${n}\` means)` : '';
  return `a size needs a unit: write \`${n}M\` for ${n} MiB${mib} or \`${n}B\` for ${n} bytes${same}`;
}

// The daemon arms these as timers; setTimeout fires at once beyond 2^31-1 ms (24.8 days).
export const MAX_DURATION_MS = 2 ** 31 - 1;
const SECONDS = /^[0-9]+(?:\.[0-9]+)?$/;

/** Seconds with optional fractions (`1.5`), to whole milliseconds. */
export function duration(minMs: number): Converter<number> {
  return (value) => {
    const ms = SECONDS.test(value) ? Math.round(Number(value) * 1000) : NaN;
    if (!Number.isFinite(ms) || ms < minMs || ms > MAX_DURATION_MS) {
      const range = minMs === 0 ? 'from 0 to' : 'more than 0, at most';
      return fail(
        `expected seconds ${range} ${Math.floor(MAX_DURATION_MS / 1000)} (24 days), fractions allowed (\`30\`, \`0.5\`)`,
      );
    }
    return ok(ms);
  };
}

const SIGNALS: ReadonlyMap<string, number> = new Map(Object.entries(constants.signals));
const SIGNAL_BY_NUMBER: ReadonlyMap<number, string> = new Map(
  [...SIGNALS].reverse().map(([name, n]) => [n, name] as const), // the first name wins (SIGABRT, not SIGIOT)
);

// Suggestions come from the signals people configure, not from obscure aliases (SIGIOT).
const COMMON_SIGNALS = [
  'HUP',
  'INT',
  'QUIT',
  'KILL',
  'USR1',
  'USR2',
  'TERM',
  'CONT',
  'STOP',
  'WINCH',
  'ABRT',
  'ALRM',
];

/** `SIGTERM`, `TERM`, `sigterm` or `15`, to the signal's name. */
export function signal(value: string): Converted<SignalName> {
  let name: string | undefined;
  if (DIGITS.test(value)) {
    name = SIGNAL_BY_NUMBER.get(Number(value));
  } else {
    const upper = value.toUpperCase();
    name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  }
  // Node's signal names are exactly the NodeJS.Signals union, so the map check makes the cast safe.
  if (name !== undefined && SIGNALS.has(name)) return ok(name as SignalName);
  const near = suggest(value.toUpperCase().replace(/^SIG/, ''), COMMON_SIGNALS);
  return fail(
    `expected a signal name or number (\`SIGTERM\`, \`TERM\`, \`15\`)${near === undefined ? '' : `; did you mean \`SIG${near}\`?`}`,
  );
}

/** One of a fixed set of words, with a "did you mean" for near misses (`on_failure`). */
export function oneOf<const T extends string>(choices: readonly T[]): Converter<T> {
  return (value) => {
    const found = choices.find((c) => c === value);
    if (found !== undefined) return ok(found);
    const near = suggest(value, choices);
    const list = choices.map((c) => `\`${c}\``).join(', ');
    return fail(`expected one of ${list}${near === undefined ? '' : `; did you mean \`${near}\`?`}`);
  };
}

const OCTAL = /^0?[0-7]{3}$/;

/** File modes and umasks in octal, as chmod writes them (`0660`, `022`). */
export function octal(what: string): Converter<number> {
  return (value) =>
    OCTAL.test(value)
      ? ok(parseInt(value, 8))
      : fail(`expected an octal ${what} such as \`0660\` or \`022\``);
}

/** `auto` is the number of CPUs, as uWSGI's `processes = %k`. */
export function processes(value: string, ctx: ConvertContext): Converted<number> {
  if (value === 'auto') return ok(Math.max(1, Math.min(ctx.cpus, 1024)));
  const n = integer(1, 1024)(value, ctx);
  return n.ok ? n : fail('expected an integer from 1 to 1024, or `auto` (one per CPU)');
}

/** A path; relative paths are relative to the vassal file's directory, as the file reads. */
export function path(value: string, ctx: ConvertContext): Converted<string> {
  if (value.startsWith('~')) return fail('`~` is not expanded; write the full path or `$(HOME)/...`');
  return ok(isAbsolute(value) ? resolve(value) : resolve(ctx.dir, value));
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface EnvAssignment {
  readonly name: string;
  readonly value: string;
}

export function envAssignment(value: string): Converted<EnvAssignment> {
  const eq = value.indexOf('=');
  const name = eq < 0 ? value : value.slice(0, eq);
  if (eq < 0 || !ENV_NAME.test(name)) {
    return fail('expected `NAME=VALUE` with NAME made of letters, digits and `_`, not starting with a digit');
  }
  return ok({ name, value: value.slice(eq + 1) });
}

export const PLACEHOLDER_NAME = /^[A-Za-z0-9_.-]+$/;

export function placeholderDefinition(value: string): Converted<EnvAssignment> {
  const eq = value.indexOf('=');
  const name = eq < 0 ? '' : value.slice(0, eq).trim();
  if (!PLACEHOLDER_NAME.test(name)) {
    return fail('expected `name=value` with name made of letters, digits, `.`, `_` and `-`');
  }
  return ok({ name, value: value.slice(eq + 1).trim() });
}

export function ready(value: string, ctx: ConvertContext): Converted<ReadySpec> {
  switch (value) {
    case 'started':
    case 'fd':
    case 'notify':
      return ok({ kind: value });
  }
  if (value.startsWith('delay:')) {
    const ms = duration(1)(value.slice('delay:'.length), ctx);
    if (ms.ok) return ok({ kind: 'delay', ms: ms.value });
  }
  const near = suggest(value, ['started', 'fd', 'notify']);
  return fail(
    `expected \`started\`, \`fd\`, \`notify\` or \`delay:SECONDS\` (seconds more than 0)${near === undefined ? '' : `; did you mean \`${near}\`?`}`,
  );
}

export function reload(value: string): Converted<ReloadSpec> {
  if (value === 'rolling' || value === 'restart') return ok({ kind: value });
  if (value.startsWith('signal:')) {
    const sig = signal(value.slice('signal:'.length));
    if (sig.ok) return ok({ kind: 'signal', signal: sig.value });
    return fail(`\`signal:\` needs a signal: ${sig.message}`);
  }
  const near = suggest(value, ['rolling', 'restart']);
  return fail(
    `expected \`rolling\`, \`restart\` or \`signal:SIGNAL\` (\`signal:SIGHUP\`)${near === undefined ? '' : `; did you mean \`${near}\`?`}`,
  );
}

/** A user or group as written: a numeric id, or a name resolved later through the lookup. */
export type Principal =
  { readonly id: number; readonly name?: undefined } | { readonly name: string; readonly id?: undefined };

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

export function principal(value: string): Converted<Principal> {
  if (DIGITS.test(value)) {
    const id = Number(value);
    if (id <= 0xfffffffe) return ok({ id });
  } else if (NAME.test(value) && value.length <= 256) {
    return ok({ name: value });
  }
  return fail('expected a user or group name, or a numeric id');
}

export interface Owner {
  readonly user: Principal | undefined;
  readonly group: Principal | undefined;
}

/** `user:group`, `user` or `:group`, as chown takes them. */
export function owner(value: string): Converted<Owner> {
  const colon = value.indexOf(':');
  const userPart = colon < 0 ? value : value.slice(0, colon);
  const groupPart = colon < 0 ? '' : value.slice(colon + 1);
  const user = userPart === '' ? undefined : principal(userPart);
  const group = groupPart === '' ? undefined : principal(groupPart);
  if ((user === undefined && group === undefined) || user?.ok === false || group?.ok === false) {
    return fail('expected `user:group`, `user` or `:group` (names or numeric ids)');
  }
  return ok({ user: user?.value, group: group?.value });
}

export interface SmartDaemon {
  readonly pidfile: string;
  readonly command: string;
}

export function smartAttachDaemon(value: string, ctx: ConvertContext): Converted<SmartDaemon> {
  const m = /^(\S+)\s+(\S.*)$/.exec(value);
  const pidfile = m?.[1] === undefined ? undefined : path(m[1], ctx);
  if (m?.[2] === undefined || pidfile?.ok !== true)
    return fail('expected `PIDFILE COMMAND` (the pidfile, a space, then the command)');
  return ok({ pidfile: pidfile.value, command: m[2] });
}
