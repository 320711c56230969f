// Commands that talk to the daemon skip yargs (70-100 ms to import, SPEC §8.8): their options are
// declared once here and read by node:util's parseArgs; yargs sees the same declarations only to
// print `--help`. main.ts takes this path when the command comes first and no --help is asked.
import { parseArgs } from 'node:util';
import type { Argv } from 'yargs';
import { defaultPaths } from '@emperor/daemon/paths';
import type { Output } from './commands/command.js';
import { suggest as nearest } from '@emperor/config/suggest';

export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  readonly describe: string;
  readonly short?: string;
  /** Shown by `--help` as `[default: ...]`; a function, so the fast path never computes it. */
  readonly default?: () => string;
}

export type Options = Readonly<Record<string, OptionSpec>>;

export interface FastCommand {
  /** Runs the command with the arguments after its name; returns the exit code. */
  readonly fast: (args: readonly string[], output: Output) => Promise<number>;
}

/** A mistake on the command line: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The option every daemon command takes. */
export const CONTROL_OPTION: Options = {
  control: {
    type: 'string',
    describe: 'Control socket path ($EMPEROR_CONTROL, else the per-user or system default)',
    default: () => defaultPaths().control,
  },
};

export interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

export function parseFast(
  args: readonly string[],
  options: Options,
  positionals: { readonly min: number; readonly max: number; readonly what: string },
): Parsed {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        Object.entries(options).map(([name, o]) => [
          name,
          o.short ? { type: o.type, short: o.short } : { type: o.type },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(explainParseError(err, args, options));
  }
  const pos = parsed.positionals;
  if (pos.length < positionals.min) throw new UsageError(`missing ${positionals.what}`);
  if (pos.length > positionals.max)
    throw new UsageError(`unexpected argument \`${pos[positionals.max] ?? ''}\``);
  return { values: parsed.values as Parsed['values'], positionals: pos };
}

/** One line for a parseArgs error, which is several lines of its own words (`logs -n -5`). */
function explainParseError(err: unknown, args: readonly string[], options: Options): string {
  const message = err instanceof Error ? err.message : String(err);
  const flag = /^Option '([^' ,]+)/.exec(message)?.[1] ?? /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (flag === undefined) return message.split('\n')[0] ?? message;
  const long = flag.startsWith('--')
    ? flag.slice(2)
    : Object.entries(options).find(([, o]) => `-${o.short ?? ''}` === flag)?.[0];
  if (message.startsWith('Unknown option')) return unknownOption(flag, options);
  if (message.includes('does not take an argument')) return `\`${flag}\` takes no value`;
  if (message.includes('is ambiguous')) {
    const next = args[args.indexOf(flag) + 1] ?? '';
    // A negative number is never a valid count or timeout: suggesting `--lines=-5` sent users on
    // to a second error.
    if (/^-\d/.test(next)) return `\`${flag}\` takes a positive number, got \`${next}\``;
    return `\`${flag}\` takes a value, and \`${next}\` looks like an option; write \`--${long ?? flag}=${next}\` if it is the value`;
  }
  return `\`${long === undefined ? flag : `--${long}`}\` takes a value`;
}

/** `unknown option \`--jsno\`; did you mean \`--json\`?`, else the list of valid ones. */
export function unknownOption(flag: string, options: Options | readonly string[]): string {
  const names = Array.isArray(options)
    ? (options as readonly string[])
    : Object.entries(options as Options).flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]);
  const all = [...names, '--help'];
  // A one-letter option is too short to guess from (`-x` is not a typo of `-n`).
  const near = flag.startsWith('--') ? nearest(flag, all) : undefined;
  return near !== undefined
    ? `unknown option \`${flag}\`; did you mean \`${near}\`?`
    : `unknown option \`${flag}\`; valid options: ${all.filter((n) => n.startsWith('--')).join(', ')}`;
}

/** The same options for yargs (`--help`, and commands run without the fast path). */
export function addOptions(y: Argv, options: Options): Argv {
  let out = y;
  for (const [name, o] of Object.entries(options))
    out = out.option(name, {
      type: o.type,
      describe: o.describe,
      ...(o.short ? { alias: o.short } : {}),
      ...(o.default ? { defaultDescription: o.default() } : {}),
    });
  return out;
}

/** Turns yargs' parsed arguments back into an argument list for `fast`. */
export function toArgs(
  parsed: Record<string, unknown>,
  options: Options,
  positionals: readonly string[],
): string[] {
  const out = [...positionals];
  for (const [name, o] of Object.entries(options)) {
    const v = parsed[name];
    if (o.type === 'boolean' && v === true) out.push(`--${name}`);
    if (o.type === 'string' && typeof v === 'string') out.push(`--${name}`, v);
  }
  return out;
}
