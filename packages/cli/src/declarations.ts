// What each command declares to yargs (options, their aliases and choices, positionals), read
// back by running its register() against a recorder instead of yargs. Shell completion and the
// "did you mean" of usage errors come from here, so they cannot drift from `--help`.
import type { Argv } from 'yargs';
import type { CommandContext, CommandModule } from './commands/command.js';

export interface OptionDecl {
  /** `--name`, then its aliases (`-n`). */
  readonly flags: readonly string[];
  readonly takesValue: boolean;
  readonly choices: readonly string[] | undefined;
}

export interface CommandDecl {
  readonly name: string;
  /** The positionals of the usage, in order: `status [name]` -> `name`. */
  readonly positionals: readonly { readonly name: string; readonly variadic: boolean }[];
  readonly positionalChoices: ReadonlyMap<string, readonly string[]>;
  readonly options: readonly OptionDecl[];
}

interface YargsOption {
  readonly type?: string;
  readonly alias?: string | readonly string[];
  readonly choices?: readonly unknown[];
  readonly array?: boolean;
}

const IDLE: CommandContext = {
  output: { out: () => undefined, err: () => undefined },
  run: () => Promise.resolve(),
};

/** Records a builder's chained calls; every other method returns the recorder too. */
function recorder(on: (method: string, args: unknown[]) => void): Argv {
  const self: unknown = new Proxy(
    {},
    {
      get:
        (_t, method) =>
        (...args: unknown[]) => {
          on(String(method), args);
          return self;
        },
    },
  );
  return self as Argv;
}

export function declarationsOf(name: string, module: CommandModule): CommandDecl {
  const options: OptionDecl[] = [];
  const positionalChoices = new Map<string, readonly string[]>();
  let usage = name;
  const add = (flag: string, o: YargsOption): void => {
    const aliases = o.alias === undefined ? [] : [o.alias].flat();
    options.push({
      flags: [`--${flag}`, ...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`))],
      takesValue: o.type !== 'boolean',
      choices: o.choices?.map(String),
    });
  };
  const builder = recorder((method, args) => {
    const [key, o] = args as [unknown, YargsOption | undefined];
    if (method === 'option' && typeof key === 'string') add(key, o ?? {});
    if (method === 'options' && typeof key === 'object' && key !== null)
      for (const [k, v] of Object.entries(key as Record<string, YargsOption>)) add(k, v);
    if (method === 'positional' && typeof key === 'string' && o?.choices)
      positionalChoices.set(key, o.choices.map(String));
  });
  const top = recorder((method, args) => {
    if (method !== 'command') return;
    const [cmd, , build] = args;
    usage = [cmd].flat().map(String)[0] ?? name;
    if (typeof build === 'function') (build as (b: Argv) => unknown)(builder);
  });
  module.register(top, '', IDLE);
  const positionals = [...usage.matchAll(/[<[]([\w-]+)(\.\.)?[\]>]/g)].map((m) => ({
    name: m[1] ?? '',
    variadic: m[2] !== undefined,
  }));
  return { name, positionals, positionalChoices, options };
}
