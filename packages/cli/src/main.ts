// The `emperor` command line. Commands live one per module in commands/; this file only lists
// them. A command's module is imported only when that command is on the command line, so its
// dependencies (the config reader, the daemon) never slow down another command.
import { readFileSync } from 'node:fs';
import type { CommandContext, CommandModule, Output } from './commands/command.js';
import { declarationsOf } from './declarations.js';
import type { FastCommand } from './fast-command.js';
import { unknownOption } from './fast-command.js';
import { failure, isUsageError } from './failure.js';

interface CommandEntry {
  readonly name: string;
  /** One line for `emperor --help`. */
  readonly describe: string;
  readonly load: () => Promise<CommandModule & Partial<FastCommand>>;
}

// To add a command: a module in commands/ exporting a CommandModule, and one line here.
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'check',
    describe: 'Validate vassal files without a daemon',
    load: async () => (await import('./commands/check.js')).check,
  },
  {
    name: 'fleet',
    describe: 'Put, remove and list the vassals of a fleet in etcd, checked before they are written',
    load: async () => (await import('./commands/fleet.js')).fleetCommand,
  },
  {
    name: 'run',
    describe: 'Run the emperor in the foreground',
    load: async () => (await import('./commands/run.js')).runCommand,
  },
  {
    name: 'status',
    describe: 'Show every vassal: state, pids, uptime, restarts, CPU, memory, and what is wrong',
    load: async () => (await import('./commands/status.js')).statusCommand,
  },
  {
    name: 'start',
    describe: 'Start vassals (NAME, GLOB or all)',
    load: async () => (await import('./commands/actions.js')).startCommand,
  },
  {
    name: 'stop',
    describe: 'Stop vassals and hold them stopped until `start` or a change of their file',
    load: async () => (await import('./commands/actions.js')).stopCommand,
  },
  {
    name: 'restart',
    describe: 'Stop and start vassals, skipping any backoff',
    load: async () => (await import('./commands/actions.js')).restartCommand,
  },
  {
    name: 'reload',
    describe: 'Reload vassals (rolling with sockets)',
    load: async () => (await import('./commands/actions.js')).reloadCommand,
  },
  {
    name: 'top',
    describe: 'A live view of every vassal: CPU and memory with sparklines, logs, and keys to act',
    load: async () => (await import('./commands/top.js')).topCommand,
  },
  {
    name: 'signal',
    describe: 'Send a signal to the main process of every instance of vassals (NAME or GLOB)',
    load: async () => (await import('./commands/signal.js')).signalCommand,
  },
  {
    name: 'rescan',
    describe: 'Read the vassal directories again, as SIGHUP to the emperor does',
    load: async () => (await import('./commands/rescan.js')).rescanCommand,
  },
  {
    name: 'logs',
    describe: "Print or follow a vassal's log",
    load: async () => (await import('./commands/logs.js')).logsCommand,
  },
  {
    name: 'show',
    describe: 'Show a vassal as it runs: argv, environment, sockets, watched files, config',
    load: async () => (await import('./commands/show.js')).showCommand,
  },
  {
    name: 'version',
    describe: 'Print the versions of the CLI and of the running daemon',
    load: async () => (await import('./commands/version.js')).versionCommand,
  },
  {
    name: 'completion',
    describe: 'Print a bash or zsh completion script',
    load: async () => (await import('./commands/completion.js')).completionCommand,
  },
];

/** Other names of a command: `emperor ls` is `emperor status`, as `pm2 ls`. */
export const ALIASES: Readonly<Record<string, string>> = { ls: 'status' };

const EXIT_USAGE = 2;
const USAGE_HINT = 'Run `emperor --help` or `emperor COMMAND --help` for usage.';

const stdio: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

export async function main(given: readonly string[], output: Output = stdio): Promise<number> {
  const alias = given[0] === undefined ? undefined : ALIASES[given[0]];
  const argv = alias === undefined ? given : [alias, ...given.slice(1)];
  // Daemon commands skip yargs unless help is asked for: `emperor status` must stay fast.
  const first = COMMANDS.find((c) => c.name === argv[0]);
  // Before stdout is touched below: `run` restarts its Node with its flags (node-flags.ts says why
  // so early). A bad $EMPEROR_NODE_FLAGS is reported by `run` itself.
  if (first?.name === 'run' && output === stdio)
    try {
      (await import('./node-flags.js')).relaunchWithNodeFlags();
    } catch {
      // run() calls it again and reports the error as any of its own
    }
  // `emperor status | head`, `emperor --control SOCK show NAME | head`: a closed pipe ends the
  // output, not with a stack trace, whichever path parses the command line (`output` is stdio
  // when main runs as the command; in tests it is not, and process.stdout is left alone).
  if (output === stdio && process.stdout.listenerCount('error') === 0)
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  if (first && !argv.includes('--help') && !argv.includes('-h')) {
    const module = await first.load();
    if (module.fast) return module.fast(argv.slice(1), output);
  }
  return withYargs(argv, output);
}

/** The full parser: `--help`, usage errors, and command lines a fast path leaves to it. */
export async function withYargs(argv: readonly string[], output: Output): Promise<number> {
  // Load every command whose name appears in argv (usually one); yargs then picks the command.
  const wanted = COMMANDS.filter((c) => argv.includes(c.name));
  const modules = new Map(await Promise.all(wanted.map(async (c) => [c.name, await c.load()] as const)));
  const { default: yargs } = await import('yargs');

  // Set from yargs callbacks; an object, so the compiler does not narrow it to its initial value.
  const state = { exitCode: 0, usageError: false };
  const ctx: CommandContext = {
    output,
    run: async (task) => {
      if (state.usageError) return;
      try {
        state.exitCode = await task();
      } catch (err) {
        // A command that fails: yargs' fail() would count every failure as a usage error.
        output.err(`emperor: ${failure(err)}`);
        if (isUsageError(err)) output.err(USAGE_HINT);
        state.exitCode = isUsageError(err) ? EXIT_USAGE : 1;
      }
    },
  };
  let parser = yargs([...argv])
    .scriptName('emperor')
    .usage(
      '$0 <command> [options]\n\nA process supervisor: one file per app in a watched directory, sockets held across reloads.',
    )
    .strict()
    .demandCommand(1, 'no command given')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(version())
    .epilogue('Exit codes: 0 success, 1 failure, 2 usage error, 3 daemon not reachable.')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    // yargs exits 1 on usage errors; SPEC §5 wants 2, and only the entry point may exit.
    .fail((message: string | undefined, err: Error | undefined) => {
      if (err !== undefined && message === undefined) throw err;
      if (state.usageError) return; // yargs may report one mistake twice (`Did you mean`, then `Unknown argument`)
      state.usageError = true;
      output.err(`emperor: ${explainYargs(message ?? err?.message ?? 'usage error', argv, modules)}`);
      output.err(USAGE_HINT);
    });
  for (const c of COMMANDS) {
    const module = modules.get(c.name);
    parser =
      module === undefined ? parser.command(c.name, c.describe) : module.register(parser, c.describe, ctx);
  }
  // Listed for --help only: main() has already turned `ls` into `status`.
  parser = parser.command('ls', 'Same as `status` (as `pm2 ls`)');
  try {
    await parser.parseAsync();
  } catch (err) {
    output.err(`emperor: ${failure(err)}`);
    return state.usageError ? EXIT_USAGE : 1;
  }
  return state.usageError ? EXIT_USAGE : state.exitCode;
}

/**
 * One line in the CLI's own words for what yargs says in its own (`Not enough non-option
 * arguments: got 0, need at least 1`), with a "did you mean" for a misspelt option.
 */
function explainYargs(
  text: string,
  argv: readonly string[],
  modules: ReadonlyMap<string, CommandModule>,
): string {
  const command = argv[0] ?? '';
  // recommendCommands() says only "Did you mean check?": name what was typed too, in the words
  // every other usage error uses.
  const meant = /^Did you mean ([\w-]+)\?/.exec(text)?.[1];
  if (meant !== undefined)
    return `unknown command \`${argv.find((a) => !a.startsWith('-')) ?? ''}\`; did you mean \`${meant}\`?`;
  const unknown = /^Unknown arguments?: ([^,\n]+)/.exec(text)?.[1];
  if (unknown !== undefined) {
    const typed = argv.find((a) => a.replace(/^-+/, '').split('=')[0] === unknown && a.startsWith('-'));
    if (typed === undefined) return `unexpected argument \`${unknown}\``;
    const module = modules.get(command);
    const flags = module ? optionFlags(command, module) : [];
    return unknownOption(typed.split('=')[0] ?? typed, flags);
  }
  const choice = /Argument: ([\w-]+), Given: "([^"]*)", Choices: (.*)/.exec(text);
  if (choice) {
    const [, name = '', given = '', list = ''] = choice;
    const flag = argv.some((a) => a.startsWith(`--${name}`)) ? `--${name}` : name;
    return `\`${flag}\` must be one of ${list.replaceAll('"', '')}; got \`${given}\``;
  }
  const following = /^Not enough arguments following: ([\w-]+)/.exec(text)?.[1];
  if (following !== undefined) return `\`${following.length === 1 ? '-' : '--'}${following}\` takes a value`;
  if (text.startsWith('Not enough non-option arguments')) {
    const module = modules.get(command);
    const wanted = module ? positionalNames(command, module) : [];
    return `missing ${wanted.length > 0 ? wanted.map((p) => p.toUpperCase()).join(' ') : 'argument'}: \`emperor ${command} --help\` says what it takes`;
  }
  const extra = /^Too many non-option arguments: got (\d+), maximum of (\d+)/.exec(text);
  if (extra) return `too many arguments: \`${command}\` takes at most ${extra[2] ?? '?'}`;
  return text.split('\n')[0] ?? text;
}

function optionFlags(command: string, module: CommandModule): string[] {
  return declarationsOf(command, module).options.flatMap((o) => o.flags);
}

function positionalNames(command: string, module: CommandModule): string[] {
  return declarationsOf(command, module).positionals.map((p) => p.name);
}
