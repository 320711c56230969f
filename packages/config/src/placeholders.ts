// Expands `%(name)`, `$(NAME)` and `%n %p %d %%` in values. Unlike uWSGI, which leaves an
// unresolved reference as literal text, every unresolved reference is an error naming it.
// A referenced key's value is expanded first (memoized), so chains work and cycles are found.
import { PLACEHOLDER_NAME } from './converters.js';
import type { IssueList } from './issue.js';
import type { RawEntry } from './read-lines.js';
import { clip } from './read-lines.js';
import { suggest } from './suggest.js';

export const MAX_VALUE_LENGTH = 64 * 1024; // stops `%(a)%(a)%(a)` chains from growing exponentially
export const MAX_DEPTH = 32; // bounds the recursion whatever the file holds

export interface Magic {
  readonly name: string;
  readonly file: string;
  /** Directory with a trailing `/`. */
  readonly dir: string;
}

export interface Definition {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

export interface ExpandInput {
  /** Entries of known keys (set-placeholder excluded). */
  readonly entries: readonly RawEntry[];
  /** Unknown keys given in the file, to explain a reference to one. */
  readonly unknownKeys: ReadonlyMap<string, number>;
  /** Every key name, to tell "not given here" from "no such name". */
  readonly knownKeys: ReadonlySet<string>;
  readonly definitions: ReadonlyMap<string, Definition>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly magic: Magic;
}

export interface Expanded {
  /** Expanded value per entry, in the order given; undefined where expansion failed (reported). */
  readonly values: readonly (string | undefined)[];
  /** Expanded `set-placeholder` values; undefined where expansion failed. */
  readonly placeholders: ReadonlyMap<string, string | undefined>;
}

const ENV_REF = /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)/;

export function expandAll(input: ExpandInput, issues: IssueList): Expanded {
  const byKey = new Map<string, RawEntry[]>();
  for (const e of input.entries) {
    const list = byKey.get(e.key);
    if (list === undefined) byKey.set(e.key, [e]);
    else list.push(e);
  }
  // Node ids: `k:KEY` for a key given once, `p:NAME` for a set-placeholder.
  const memo = new Map<string, string | undefined>();
  const stack: string[] = [];

  const node = (id: string, text: string, line: number, key: string): string | undefined => {
    if (memo.has(id)) return memo.get(id);
    stack.push(id);
    const out = expandText(text, line, key);
    stack.pop();
    memo.set(id, out);
    return out;
  };

  const reference = (name: string, line: number, key: string): string | undefined => {
    const def = input.definitions.get(name);
    const given = byKey.get(name);
    let id: string;
    let target: { text: string; line: number; key: string };
    if (def !== undefined) {
      id = `p:${name}`;
      target = { text: def.value, line: def.line, key: 'set-placeholder' };
    } else if (given?.length === 1 && given[0] !== undefined) {
      id = `k:${name}`;
      target = { text: given[0].value, line: given[0].line, key: name };
    } else if (given !== undefined) {
      const lines = given.map((e) => e.line).join(', ');
      issues.error(
        'EMP_CONFIG_AMBIGUOUS_PLACEHOLDER',
        line,
        key,
        `\`%(${name})\` is ambiguous: \`${name}\` is given on lines ${lines}; use \`set-placeholder\` for a single value`,
      );
      return undefined;
    } else {
      const unknownLine = input.unknownKeys.get(name);
      const hint =
        unknownLine !== undefined
          ? `\`${name}\` (line ${unknownLine}) is not a key; define it with \`set-placeholder = ${name}=...\``
          : hintFor(name, [...input.definitions.keys(), ...byKey.keys()], input.knownKeys);
      issues.error(
        'EMP_CONFIG_UNKNOWN_PLACEHOLDER',
        line,
        key,
        `unknown placeholder \`%(${clip(name)})\`: ${hint}`,
      );
      return undefined;
    }
    if (stack.includes(id)) {
      const chain = [...stack.slice(stack.indexOf(id)), id].map((s) => `\`${s.slice(2)}\``).join(' -> ');
      issues.error('EMP_CONFIG_PLACEHOLDER_CYCLE', line, key, `placeholder cycle: ${chain}`);
      return undefined;
    }
    if (stack.length >= MAX_DEPTH) {
      issues.error(
        'EMP_CONFIG_VALUE_TOO_LONG',
        line,
        key,
        `placeholders nest more than ${MAX_DEPTH} deep at \`%(${name})\``,
      );
      return undefined;
    }
    return node(id, target.text, target.line, target.key);
  };

  const expandText = (text: string, line: number, key: string): string | undefined => {
    let out = '';
    let failed = false;
    let i = 0;
    const bad = (code: Parameters<IssueList['error']>[0], message: string): void => {
      issues.error(code, line, key, message);
      failed = true;
    };
    while (i < text.length) {
      const next = nextSpecial(text, i);
      out += text.slice(i, next);
      i = next;
      if (i >= text.length) break;
      if (text.charAt(i) === '$') {
        const m = ENV_REF.exec(text.slice(i, i + 300));
        if (m?.[1] === undefined) {
          out += '$'; // not `$(NAME)`: a literal `$`, so `$HOME` and `$(cmd args)` reach a shell intact
          i++;
          continue;
        }
        // hasOwn: `$(constructor)` must not find Object.prototype's members.
        const value = Object.hasOwn(input.env, m[1]) ? input.env[m[1]] : undefined;
        if (value === undefined)
          bad(
            'EMP_CONFIG_UNSET_ENV',
            `\`$(${m[1]})\`: environment variable \`${m[1]}\` is not set in the emperor's environment`,
          );
        else out += value;
        i += m[0].length;
      } else {
        const c = text.charAt(i + 1);
        i += 2;
        if (c === '%') out += '%';
        else if (c === 'n') out += input.magic.name;
        else if (c === 'p') out += input.magic.file;
        else if (c === 'd') out += input.magic.dir;
        else if (c === '(') {
          const close = text.indexOf(')', i);
          const name = close < 0 ? '' : text.slice(i, close);
          if (close < 0 || !PLACEHOLDER_NAME.test(name)) {
            bad(
              'EMP_CONFIG_PLACEHOLDER_SYNTAX',
              close < 0
                ? 'unterminated `%(`: expected `%(name)`'
                : `\`%(${clip(name)})\`: a placeholder name is made of letters, digits, \`.\`, \`_\` and \`-\``,
            );
            i = close < 0 ? text.length : close + 1;
            continue;
          }
          i = close + 1;
          const value = reference(name, line, key);
          if (value === undefined) failed = true;
          else out += value;
        } else if (c === '') {
          bad('EMP_CONFIG_UNKNOWN_MAGIC', 'a lone `%` at the end of the value; write `%%` for a literal `%`');
        } else if (c === 'k') {
          bad(
            'EMP_CONFIG_UNKNOWN_MAGIC',
            "unknown magic variable `%k`: uWSGI's number of CPUs; write `processes = auto` for one instance per CPU",
          );
        } else {
          bad(
            'EMP_CONFIG_UNKNOWN_MAGIC',
            `unknown magic variable \`%${c}\`: expected \`%n\`, \`%p\`, \`%d\` or \`%(name)\`; write \`%%${c}\` for a literal \`%${c}\``,
          );
        }
      }
      if (out.length > MAX_VALUE_LENGTH) {
        bad(
          'EMP_CONFIG_VALUE_TOO_LONG',
          `the value grows over ${MAX_VALUE_LENGTH} characters once placeholders are expanded`,
        );
        return undefined;
      }
    }
    return failed ? undefined : out;
  };

  const values = input.entries.map((e) => {
    const once = byKey.get(e.key)?.length === 1;
    return once ? node(`k:${e.key}`, e.value, e.line, e.key) : expandText(e.value, e.line, e.key);
  });
  const placeholders = new Map<string, string | undefined>();
  for (const def of input.definitions.values()) {
    placeholders.set(def.name, node(`p:${def.name}`, def.value, def.line, 'set-placeholder'));
  }
  return { values, placeholders };
}

function nextSpecial(text: string, from: number): number {
  const a = text.indexOf('%', from);
  const b = text.indexOf('$', from);
  if (a < 0) return b < 0 ? text.length : b;
  return b < 0 ? a : Math.min(a, b);
}

function hintFor(name: string, given: readonly string[], knownKeys: ReadonlySet<string>): string {
  if (knownKeys.has(name))
    return `\`${name}\` is not given in this file (placeholders see the file's lines, not defaults)`;
  const near = suggest(name, given);
  if (near !== undefined) return `did you mean \`%(${near})\`?`;
  return 'it names neither a key given in this file nor a `set-placeholder`';
}
