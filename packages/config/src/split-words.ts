// Splits `exec` into argv the way a POSIX shell splits words (quote removal and backslashes
// only: no expansion, no operators), so `exec = node "my app.js"` needs no shell.
import { fail, ok, type Converted } from './converters.js';

export interface SplitWords {
  readonly argv: readonly string[];
  /** Unquoted shell syntax (`|`, `>`, `$`...) that is passed literally without a shell. */
  readonly shellSyntax: readonly string[];
}

const SHELL_CHARS = new Set(['|', '&', ';', '<', '>', '$', '`', '(', ')']);
// Inside double quotes a backslash only escapes these (POSIX 2.2.3); elsewhere it stays.
const DQ_ESCAPABLE = new Set(['$', '`', '"', '\\']);

export function splitWords(input: string): Converted<SplitWords> {
  const argv: string[] = [];
  const shellSyntax = new Set<string>();
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < input.length) {
    const c = input.charAt(i);
    if (c === ' ' || c === '\t') {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end < 0) return fail(`unbalanced single quote at column ${i + 1}`, 'EMP_CONFIG_EXEC_QUOTE');
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (;;) {
        const d = input.charAt(j);
        if (j >= input.length)
          return fail(`unbalanced double quote at column ${i + 1}`, 'EMP_CONFIG_EXEC_QUOTE');
        if (d === '"') break;
        const next = input.charAt(j + 1);
        if (d === '\\' && DQ_ESCAPABLE.has(next)) {
          word += next;
          j += 2;
        } else {
          word += d;
          j++;
        }
      }
      inWord = true;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= input.length)
        return fail('trailing backslash: it escapes nothing', 'EMP_CONFIG_EXEC_QUOTE');
      word += input.charAt(i + 1);
      inWord = true;
      i += 2;
    } else {
      if (SHELL_CHARS.has(c)) shellSyntax.add(c);
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) argv.push(word);
  if (argv.length === 0) return fail('expected a command');
  return ok({ argv, shellSyntax: [...shellSyntax] });
}
