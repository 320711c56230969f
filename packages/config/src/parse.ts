// parseVassal: text -> frozen VassalConfig, or every problem of the file in one pass.
// Phases: read lines -> sort out keys -> expand placeholders -> convert -> cross-key rules.
import { basename, dirname } from 'node:path';
import { vassalNameOf } from './file-name.js';
import { byLine, IssueList, type ConfigIssue } from './issue.js';
import { ALIASES, isKeyName, KEY_NAMES, KEYS, type KeyContext, type KeyName, type KeySpec } from './keys.js';
import { expandAll, type Definition } from './placeholders.js';
import { clip, readLines, type RawEntry } from './read-lines.js';
import { uwsgiVassal } from './uwsgi.js';
import { suggest } from './suggest.js';
import { asFileOwner, uwsgiIdWarnings } from './tyrant.js';
import type { ParseOptions, VassalConfig } from './types.js';
import { validate } from './validate.js';
import { Values } from './values.js';
import { placeholderDefinition } from './converters.js';

const KNOWN_KEYS: ReadonlySet<string> = new Set(KEY_NAMES);

export type ParseResult =
  | { readonly ok: true; readonly config: VassalConfig; readonly warnings: readonly ConfigIssue[] }
  | {
      readonly ok: false;
      readonly errors: readonly ConfigIssue[];
      readonly warnings: readonly ConfigIssue[];
    };

export function parseVassal(text: string, options: ParseOptions): ParseResult {
  const issues = new IssueList(options.file);
  const fileName = basename(options.file);
  const dir = options.origin?.dir ?? dirname(options.file);
  const accepted = options.origin ? options.origin.name : vassalNameOf(fileName);
  if (accepted === undefined) {
    issues.error(
      'EMP_CONFIG_FILE_NAME',
      undefined,
      undefined,
      `the emperor ignores \`${clip(fileName)}\`: a vassal file is named \`NAME.ini\`, NAME made of letters, digits, \`.\`, \`_\` and \`-\`, not starting with \`.\``,
    );
  }
  const name = accepted ?? fileName.replace(/\.ini$/, '');

  const { entries, hasSection, uwsgiLine, uwsgi } = readLines(text, issues);
  if (!hasSection && uwsgiLine !== undefined && options.origin) {
    // uWSGI reads its `--ini` from a path: text from elsewhere has none to give it.
    issues.error(
      'EMP_CONFIG_NO_SECTION',
      uwsgiLine,
      undefined,
      'a `[uwsgi]` vassal is run by uWSGI from its file: put it in a vassal directory, or write a `[vassal]` section',
    );
    return { ok: false, errors: issues.errors, warnings: [] };
  }
  if (!hasSection && uwsgiLine !== undefined) {
    // uWSGI reads its own file, other sections and odd lines included: only what the emperor
    // needs of it is read here, and only a bad file name is an error.
    const own = new IssueList(options.file);
    const read = uwsgiVassal(uwsgi, name, options, own);
    if (options.owner !== undefined) uwsgiIdWarnings(uwsgi, options.owner, own);
    const config =
      options.owner === undefined
        ? read
        : asFileOwner(read, options.owner, options.lookup, { user: undefined, group: undefined }, own);
    const errors = [...issues.errors.filter((e) => e.code === 'EMP_CONFIG_FILE_NAME'), ...own.errors];
    const warnings = own.warnings.toSorted(byLine);
    if (errors.length > 0) return { ok: false, errors, warnings };
    return { ok: true, config: deepFreeze(config), warnings };
  }
  if (!hasSection)
    issues.error(
      'EMP_CONFIG_NO_SECTION',
      undefined,
      undefined,
      'no `[vassal]` section: start the file with a `[vassal]` line',
    );

  const { known, unknownKeys, definitions } = sortKeys(entries, issues);
  const expanded = expandAll(
    {
      entries: known,
      unknownKeys,
      knownKeys: KNOWN_KEYS,
      definitions,
      env: options.env,
      magic: { name, file: options.file, dir: dir.endsWith('/') ? dir : `${dir}/` },
    },
    issues,
  );

  const values = new Values();
  const ctx = { dir, cpus: options.cpus };
  known.forEach((entry, i) => {
    const value = expanded.values[i];
    // sortKeys only keeps entries of known keys.
    const key = entry.key as KeyName;
    if (value === undefined) {
      values.markInvalid(key, entry.line);
      return;
    }
    convert(key, entry, value, { ...ctx, line: entry.line }, values, issues);
  });
  // fromEntries defines own properties, so even a `__proto__` name is kept as data.
  const placeholders = Object.fromEntries(
    [...expanded.placeholders].filter((e): e is [string, string] => e[1] !== undefined),
  );

  // Both sections: uWSGI reads `[uwsgi]` (`uwsgi --ini FILE` by default), the emperor `[vassal]`.
  const uwsgiBase =
    hasSection && uwsgiLine !== undefined
      ? uwsgiVassal(uwsgi, name, options, issues, {
          ...(known.some((e) => e.key === 'exec')
            ? {
                ownNothing:
                  '`exec` is set in `[vassal]`: the emperor hands its sockets only to the `uwsgi --ini` it builds',
              }
            : {}),
          vassalSockets: known.filter((e) => e.key === 'socket').length,
        })
      : undefined;
  if (uwsgiBase !== undefined && options.owner !== undefined) uwsgiIdWarnings(uwsgi, options.owner, issues);
  const validated = validate(
    { name, file: options.file, dir, values, placeholders, options, hasSection, uwsgi: uwsgiBase },
    issues,
  );
  const config =
    validated === undefined || options.owner === undefined
      ? validated
      : asFileOwner(
          validated,
          options.owner,
          options.lookup,
          { user: values.line('user'), group: values.line('group') },
          issues,
        );
  const warnings = issues.warnings.toSorted(byLine);
  if (issues.errors.length > 0 || config === undefined) {
    return { ok: false, errors: issues.errors.toSorted(byLine), warnings };
  }
  return { ok: true, config: deepFreeze(config), warnings };
}

interface Sorted {
  /** Entries of known keys except `set-placeholder`; a repeated scalar keeps its first line. */
  readonly known: RawEntry[];
  readonly unknownKeys: Map<string, number>;
  readonly definitions: Map<string, Definition>;
}

function sortKeys(entries: readonly RawEntry[], issues: IssueList): Sorted {
  const known: RawEntry[] = [];
  const unknownKeys = new Map<string, number>();
  const definitions = new Map<string, Definition>();
  const firstLine = new Map<string, number>();
  const suggestions = new Map<string, string>();
  for (const e of entries) {
    if (!isKeyName(e.key)) {
      let hint = suggestions.get(e.key);
      if (hint === undefined) {
        hint = unknownKeyHint(e.key);
        suggestions.set(e.key, hint); // a generated file may repeat one unknown key many times
      }
      issues.error('EMP_CONFIG_UNKNOWN_KEY', e.line, e.key, `unknown key \`${clip(e.key)}\`: ${hint}`);
      if (!unknownKeys.has(e.key)) unknownKeys.set(e.key, e.line);
      continue;
    }
    if (e.value === '') {
      issues.error(
        'EMP_CONFIG_EMPTY_VALUE',
        e.line,
        e.key,
        `\`${e.key}\` has no value: expected ${KEYS[e.key].type}, e.g. \`${e.key} = ${KEYS[e.key].example}\``,
      );
      continue;
    }
    const first = firstLine.get(e.key);
    if (first !== undefined && !KEYS[e.key].repeatable) {
      issues.error(
        'EMP_CONFIG_DUPLICATE_KEY',
        e.line,
        e.key,
        `\`${e.key}\` is given twice (lines ${first} and ${e.line}); it takes one value`,
      );
      continue;
    }
    if (first === undefined) firstLine.set(e.key, e.line);
    if (e.key === 'set-placeholder') {
      const def = placeholderDefinition(e.value);
      if (!def.ok) {
        issues.error(
          'EMP_CONFIG_INVALID_VALUE',
          e.line,
          e.key,
          `invalid \`set-placeholder\` value \`${clip(e.value)}\`: ${def.message}`,
        );
        continue;
      }
      const { name, value } = def.value;
      const earlier = definitions.get(name);
      if (earlier !== undefined) {
        issues.error(
          'EMP_CONFIG_DUPLICATE_PLACEHOLDER',
          e.line,
          e.key,
          `placeholder \`${name}\` is defined twice (lines ${earlier.line} and ${e.line})`,
        );
      } else if (isKeyName(name)) {
        issues.error(
          'EMP_CONFIG_DUPLICATE_PLACEHOLDER',
          e.line,
          e.key,
          `placeholder \`${name}\` has the name of a key; \`%(${name})\` already means that key's value: choose another name`,
        );
      } else {
        definitions.set(name, { name, value, line: e.line });
      }
      continue;
    }
    known.push(e);
  }
  return { known, unknownKeys, definitions };
}

/** Another supervisor's name for one of our keys, else the nearest key by spelling. */
function unknownKeyHint(key: string): string {
  const alias = key.toLowerCase();
  const ours = Object.hasOwn(ALIASES, alias) ? ALIASES[alias] : undefined;
  if (ours !== undefined) {
    return `the emperor calls it \`${ours}\`, e.g. \`${ours} = ${KEYS[ours].example}\``;
  }
  const near = suggest(key, KEY_NAMES);
  return near === undefined ? 'see docs/config.md for the keys' : `did you mean \`${near}\`?`;
}

function convert(
  key: KeyName,
  entry: RawEntry,
  value: string,
  ctx: KeyContext,
  values: Values,
  issues: IssueList,
): void {
  const spec: KeySpec<unknown> = KEYS[key];
  const r = spec.convert(value, ctx);
  if (r.ok) {
    values.add(key, r.value, entry.line);
    return;
  }
  values.markInvalid(key, entry.line);
  const from = value === entry.value ? '' : ` (from \`${clip(entry.value)}\`)`;
  // `processes = 4 ; four workers`: the commonest surprise for users of other INI readers.
  const comment = /\s[;#]/.test(entry.value)
    ? '; `;` and `#` start a comment only at the start of a line'
    : '';
  issues.error(
    r.code ?? 'EMP_CONFIG_INVALID_VALUE',
    entry.line,
    key,
    `invalid \`${key}\` value \`${clip(value)}\`${from}: ${r.message}${comment}`,
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
