// The shape shared by commands that talk to the daemon: options declared once (fast-command.ts),
// a socket path, and one mapping of failures to exit codes (SPEC §5): 1 failure, 2 usage error,
// 3 daemon not reachable.
import type { CommandModule, Output } from './commands/command.js';
import {
  CONTROL_OPTION,
  UsageError,
  addOptions,
  parseFast,
  toArgs,
  type FastCommand,
  type Options,
  type Parsed,
} from './fast-command.js';
import { DaemonError, EXIT_UNREACHABLE, UnreachableError, controlPath } from './control-client.js';
import { failure } from './failure.js';

export interface DaemonCommandSpec {
  /** yargs syntax: `status [name]`, `stop <targets..>`. */
  readonly usage: string;
  /** The positional's key in that syntax, if any. */
  readonly positional?: string;
  readonly positionals: { readonly min: number; readonly max: number; readonly what: string };
  readonly options: Options;
  readonly examples?: readonly (readonly [string, string])[];
  readonly epilogue?: string;
  readonly run: (args: Parsed, socket: string, output: Output) => Promise<number>;
}

export function daemonCommand(spec: DaemonCommandSpec): CommandModule & FastCommand {
  const options: Options = { ...spec.options, ...CONTROL_OPTION };
  const fast = async (args: readonly string[], output: Output): Promise<number> => {
    let json = false;
    try {
      const parsed = parseFast(args, options, spec.positionals);
      json = parsed.values.json === true;
      return await spec.run(parsed, controlPath(parsed.values.control), output);
    } catch (err) {
      // A script that asked for JSON gets JSON on stdout when the daemon refuses, too.
      if (json && err instanceof DaemonError)
        output.out(JSON.stringify({ error: { code: err.code, message: err.message } }, null, 2));
      return report(err, output);
    }
  };
  return {
    fast,
    register: (y, describe, ctx) =>
      y.command(
        spec.usage,
        describe,
        (b) => {
          let out = addOptions(b, options);
          for (const [cmd, what] of spec.examples ?? []) out = out.example(cmd, what);
          return spec.epilogue ? out.epilogue(spec.epilogue) : out;
        },
        (args) =>
          ctx.run(() => {
            const raw =
              spec.positional === undefined ? undefined : (args as Record<string, unknown>)[spec.positional];
            const positionals = raw === undefined ? [] : [raw].flat().map(String);
            return fast(toArgs(args, options, positionals), ctx.output);
          }),
      ),
  };
}

export function report(err: unknown, output: Output): number {
  if (err instanceof UsageError) {
    output.err(`emperor: ${err.message}`);
    output.err('Run `emperor --help` or `emperor COMMAND --help` for usage.');
    return 2;
  }
  if (err instanceof UnreachableError) {
    output.err(`emperor: ${err.message}`);
    return EXIT_UNREACHABLE;
  }
  if (err instanceof DaemonError) {
    output.err(`emperor: ${err.message} [${err.code}]`);
    if (err.code === 'EMP_CONTROL_BUSY') return EXIT_UNREACHABLE; // it answered, but did nothing
    return err.code === 'EMP_CONTROL_BAD_REQUEST' ? 2 : 1;
  }
  output.err(`emperor: ${failure(err)}`);
  return 1;
}
