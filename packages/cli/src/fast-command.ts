// Commands that talk to the daemon skip yargs (70-100 ms to import, SPEC §8.8): their options are
// declared once here and read by node:util's parseArgs; yargs sees the same declarations only to
// print `--help`. main.ts takes this path when the command comes first and no --help is asked.
import { parseArgs } from 'node:util';
import type { Argv } from 'yargs';
import type { Output } from './commands/command.js';

export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  readonly describe: string;
  readonly short?: string;
}

export type Options = Readonly<Record<string, OptionSpec>>;

export interface FastCommand {
  /** Runs the command with the arguments after its name; returns the exit code. */
  readonly fast: (args: readonly string[], output: Output) => Promise<number>;
}

/** A mistake on the command line: exit code 2. */
export class UsageError extends Error {}

/** The option every daemon command takes. */
export const CONTROL_OPTION: Options = {
  control: {
    type: 'string',
    describe: 'Control socket path (default: $EMPEROR_CONTROL, then the per-user or system default)',
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
    // parseArgs says e.g. "Unknown option '--jsno'".
    throw new UsageError(err instanceof Error ? (err.message.split('. ')[0] ?? err.message) : String(err));
  }
  const pos = parsed.positionals;
  if (pos.length < positionals.min) throw new UsageError(`missing ${positionals.what}`);
  if (pos.length > positionals.max)
    throw new UsageError(`unexpected argument \`${pos[positionals.max] ?? ''}\``);
  return { values: parsed.values as Parsed['values'], positionals: pos };
}

/** The same options for yargs (`--help`, and commands run without the fast path). */
export function addOptions(y: Argv, options: Options): Argv {
  let out = y;
  for (const [name, o] of Object.entries(options))
    out = out.option(name, { type: o.type, describe: o.describe, ...(o.short ? { alias: o.short } : {}) });
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
