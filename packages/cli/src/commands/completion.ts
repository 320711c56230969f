// `emperor completion [bash|zsh]`: a completion script generated from what each command declares
// to yargs (declarations.ts), so a new option completes without anyone editing this file.
// Vassal names come from `emperor status --names`, with the `--control` given on the line.
import type { CommandModule, Output } from './command.js';
import { parseFast, UsageError, type FastCommand } from '../fast-command.js';
import { report } from '../daemon-command.js';
import { declarationsOf, type CommandDecl } from '../declarations.js';

/** Positionals that name vassals; `targets` also takes `all`. */
const VASSAL_POSITIONALS = new Set(['name', 'target', 'targets']);
/** Options whose value is a path: they complete file names. */
const PATH_OPTIONS = new Set(['--control', '--config', '--vassals', '--log-dir']);
const SIGNALS = 'HUP INT QUIT KILL USR1 USR2 TERM CONT STOP WINCH ABRT ALRM';

/** Words safe inside the generated script (every declared name is, but the script is code). */
function words(list: readonly string[]): string {
  return list.filter((w) => /^[\w@%+=:,./-]+$/.test(w)).join(' ');
}

async function declarations(): Promise<CommandDecl[]> {
  const { COMMANDS, ALIASES } = await import('../main.js');
  const decls = await Promise.all(COMMANDS.map(async (c) => declarationsOf(c.name, await c.load())));
  for (const [alias, target] of Object.entries(ALIASES)) {
    const d = decls.find((x) => x.name === target);
    if (d) decls.push({ ...d, name: alias });
  }
  return decls;
}

export function bashScript(decls: readonly CommandDecl[]): string {
  const valueFlags = new Set(
    decls.flatMap((d) => d.options.filter((o) => o.takesValue).flatMap((o) => o.flags)),
  );
  // What completes the value of an option: its choices, files for paths, else nothing.
  const optionValues = new Map<string, string[]>();
  const flagCases: string[] = [];
  const positionalCases: string[] = [];
  for (const d of decls) {
    for (const o of d.options.filter((x) => x.takesValue)) {
      const what = o.choices
        ? `COMPREPLY=( $(compgen -W "${words(o.choices)}" -- "$cur") )`
        : o.flags.some((f) => PATH_OPTIONS.has(f))
          ? 'COMPREPLY=( $(compgen -f -- "$cur") )'
          : 'COMPREPLY=()';
      const patterns = optionValues.get(what) ?? [];
      optionValues.set(what, [...patterns, ...o.flags.map((f) => `${d.name}:${words([f])}`)]);
    }
    const flags = [...d.options.flatMap((o) => o.flags), '--help'];
    flagCases.push(`        ${d.name}) COMPREPLY=( $(compgen -W "${words(flags)}" -- "$cur") ) ;;`);
    d.positionals.forEach((p, k) => {
      const at = p.variadic ? '*' : String(k);
      const choices = d.positionalChoices.get(p.name);
      const what = choices
        ? `COMPREPLY=( $(compgen -W "${words(choices)}" -- "$cur") )`
        : VASSAL_POSITIONALS.has(p.name)
          ? `_emperor_names${p.variadic ? ' all' : ''}`
          : p.name === 'signal'
            ? `COMPREPLY=( $(compgen -W "${SIGNALS}" -- "$cur") )`
            : 'COMPREPLY=( $(compgen -f -- "$cur") )';
      positionalCases.push(`    ${d.name}:${at}) ${what} ;;`);
    });
  }
  return `# emperor bash completion: eval "$(emperor completion bash)" in ~/.bashrc
_emperor_names() {
  local names
  names="$(emperor status --names \${_emperor_control:+--control "$_emperor_control"} 2>/dev/null)"
  COMPREPLY=( $(compgen -W "$names $*" -- "$cur") )
}
_emperor() {
  local cur prev cmd i w n=0 _emperor_control=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${words(decls.map((d) => d.name))} --help --version" -- "$cur") )
    return
  fi
  # The words before the cursor: the --control to ask for names, and how many positionals.
  for ((i = 2; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      --control=*) _emperor_control="\${w#--control=}" ;;
      --control) if [ "\${COMP_WORDS[i+1]}" = "=" ]; then i=$((i + 1)); fi
        _emperor_control="\${COMP_WORDS[i+1]}"; i=$((i + 1)) ;;
      ${words([...valueFlags].filter((f) => f !== '--control')).replaceAll(' ', '|') || '--'}) i=$((i + 1)) ;;
      -*) ;;
      *) n=$((n + 1)) ;;
    esac
  done
  case "$cmd:$prev" in
${[...optionValues].map(([what, patterns]) => `    ${patterns.join('|')}) ${what}; return ;;`).join('\n')}
  esac
  case "$cur" in
    -*)
      case "$cmd" in
${flagCases.join('\n')}
      esac
      return ;;
  esac
  case "$cmd:$n" in
${positionalCases.join('\n')}
  esac
}
complete -F _emperor emperor
`;
}

async function fast(args: readonly string[], output: Output): Promise<number> {
  try {
    const { positionals } = parseFast(args, {}, { min: 0, max: 1, what: 'shell' });
    const shell = positionals[0] ?? 'bash';
    if (shell !== 'bash' && shell !== 'zsh')
      throw new UsageError(`no completion for \`${shell}\`; choose bash or zsh`);
    const bash = bashScript(await declarations());
    const zsh = `#compdef emperor\n# emperor zsh completion: eval "$(emperor completion zsh)" in ~/.zshrc\nautoload -U bashcompinit && bashcompinit\n${bash}`;
    output.out((shell === 'bash' ? bash : zsh).trimEnd());
    return 0;
  } catch (err) {
    return report(err, output);
  }
}

export const completionCommand: CommandModule & FastCommand = {
  fast,
  register: (y, describe, ctx) =>
    y.command(
      'completion [shell]',
      describe,
      (b) =>
        b
          .positional('shell', {
            type: 'string',
            choices: ['bash', 'zsh'],
            describe: 'The shell',
            defaultDescription: 'bash',
          })
          .example('eval "$($0 completion bash)"', 'Enable completion in this shell'),
      (args) => ctx.run(() => fast(typeof args.shell === 'string' ? [args.shell] : [], ctx.output)),
    ),
};
