// `emperor completion [bash|zsh]`: a completion script for commands, options and vassal names
// (names come from `emperor status --names`, which is fast and silent when no daemon runs).
import type { CommandModule, Output } from './command.js';
import { parseFast, UsageError, type FastCommand } from '../fast-command.js';
import { report } from '../daemon-command.js';

const COMMANDS = 'status start stop restart reload logs show check run version completion';

const BASH = `# emperor bash completion: eval "$(emperor completion bash)" in ~/.bashrc
_emperor() {
  local cur prev cmd
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${COMMANDS} --help --version" -- "$cur") )
    return
  fi
  case "$cur" in
    -*)
      case "$cmd" in
        status) COMPREPLY=( $(compgen -W "--json --names --control --help" -- "$cur") ) ;;
        start|stop|restart|reload) COMPREPLY=( $(compgen -W "--wait --timeout --control --help" -- "$cur") ) ;;
        logs) COMPREPLY=( $(compgen -W "-n --lines -f --follow --control --help" -- "$cur") ) ;;
        show|version) COMPREPLY=( $(compgen -W "--json --control --help" -- "$cur") ) ;;
        run) COMPREPLY=( $(compgen -W "--vassals --log-dir --control --control-group --metrics --config --log-level --help" -- "$cur") ) ;;
      esac
      return ;;
  esac
  case "$cmd" in
    status|start|stop|restart|reload|logs|show)
      local names; names="$(emperor status --names 2>/dev/null)"
      case "$cmd" in start|stop|restart|reload) names="$names all" ;; esac
      COMPREPLY=( $(compgen -W "$names" -- "$cur") ) ;;
    check) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
    completion) COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") ) ;;
  esac
}
complete -F _emperor emperor
`;

const ZSH = `#compdef emperor
# emperor zsh completion: eval "$(emperor completion zsh)" in ~/.zshrc
autoload -U bashcompinit && bashcompinit
${BASH}`;

function fast(args: readonly string[], output: Output): Promise<number> {
  try {
    const { positionals } = parseFast(args, {}, { min: 0, max: 1, what: 'shell' });
    const shell = positionals[0] ?? 'bash';
    if (shell !== 'bash' && shell !== 'zsh')
      throw new UsageError(`no completion for \`${shell}\`; choose bash or zsh`);
    output.out((shell === 'bash' ? BASH : ZSH).trimEnd());
    return Promise.resolve(0);
  } catch (err) {
    return Promise.resolve(report(err, output));
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
            describe: 'The shell (default bash)',
          })
          .example('eval "$($0 completion bash)"', 'Enable completion in this shell'),
      (args) => ctx.run(() => fast(typeof args.shell === 'string' ? [args.shell] : [], ctx.output)),
    ),
};
