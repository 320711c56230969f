// What every command module provides (circus's commands/base.py, smaller): it adds its own
// syntax, options, examples and handler to the parser. main.ts imports a module only when its
// command is on the command line, so one command's dependencies never slow another down.
import type { Argv } from 'yargs';

/** Where a command prints; the entry point passes stdout/stderr, tests may capture. */
export interface Output {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export interface CommandContext {
  readonly output: Output;
  /**
   * Runs the command's work and records its exit code: 0 success, 1 failure, 3 daemon not
   * reachable (SPEC §5). Skips the work after a usage error: yargs with `.fail()` set may
   * still call the handler, and `emperor stop` must not act on half-parsed arguments.
   */
  readonly run: (task: () => Promise<number>) => Promise<void>;
}

export interface CommandModule {
  register(y: Argv, describe: string, ctx: CommandContext): Argv;
}
