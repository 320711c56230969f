// Reads the INI text the way uWSGI does: line by line, values verbatim (no quoting, no inline
// comments), keeping line numbers and every occurrence of a key. A file is a `[vassal]` file, or
// a uWSGI vassal file (`[uwsgi]`, no `[vassal]`), or both (uWSGI run under `[vassal]` keys); any
// other section is almost always a typo.
import type { IssueList } from './issue.js';
import { suggest } from './suggest.js';

export interface RawEntry {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

export const SECTION = 'vassal';

// Tab is fine; any other C0 control or DEL would end up in an argv or a path.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

export interface ReadLines {
  readonly entries: RawEntry[];
  readonly hasSection: boolean;
  /** The first `[uwsgi]` header: a uWSGI vassal file (with `[vassal]` keys when hasSection). */
  readonly uwsgiLine: number | undefined;
  /** The lines of the `[uwsgi]` section(s), in file order. */
  readonly uwsgi: RawEntry[];
}

/** The `[vassal]` entries in file order; syntax problems go to `issues`. */
export function readLines(text: string, issues: IssueList): ReadLines {
  const entries: RawEntry[] = [];
  const uwsgi: RawEntry[] = [];
  const before: RawEntry[] = [];
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let section: string | undefined;
  let sectionLine: number | undefined;
  let uwsgiLine: number | undefined;
  const others: { name: string; line: number }[] = [];
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] ?? '';
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#')) continue;
    if (CONTROL.test(line)) {
      const ch = CONTROL.exec(line)?.[0] ?? '';
      const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
      issues.error(
        'EMP_CONFIG_CONTROL_CHAR',
        lineNo,
        undefined,
        `control character 0x${hex} in line; only text and tabs are allowed`,
      );
      continue;
    }
    if (trimmed.startsWith('[')) {
      if (!trimmed.endsWith(']')) {
        issues.error(
          'EMP_CONFIG_SYNTAX',
          lineNo,
          undefined,
          `section header \`${clip(trimmed)}\` has no closing \`]\``,
        );
        section = ''; // skip its lines silently: the header was reported
        continue;
      }
      const name = trimmed.slice(1, -1).trim();
      if (name === SECTION) {
        if (sectionLine !== undefined) {
          issues.error(
            'EMP_CONFIG_DUPLICATE_SECTION',
            lineNo,
            undefined,
            `second \`[vassal]\` header (the first is on line ${sectionLine}); a file has one section`,
          );
        }
        sectionLine ??= lineNo;
      } else if (name === 'uwsgi') {
        // uWSGI's own section: its lines go to the `[uwsgi]` reader (uwsgi.ts).
        uwsgiLine ??= lineNo;
      } else {
        // Reported at the end: whether it is a typo or one of uWSGI's depends on the whole file.
        others.push({ name, line: lineNo });
      }
      section = name;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) {
      issues.error(
        'EMP_CONFIG_SYNTAX',
        lineNo,
        undefined,
        `expected \`key = value\`, got \`${clip(trimmed)}\``,
      );
      continue;
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === '') {
      issues.error(
        'EMP_CONFIG_SYNTAX',
        lineNo,
        undefined,
        `missing key before \`=\`; expected \`key = value\``,
      );
      continue;
    }
    if (section === undefined) {
      before.push({ key, value, line: lineNo });
      continue;
    }
    if (section === 'uwsgi') uwsgi.push({ key, value, line: lineNo });
    if (section !== SECTION) continue; // the unknown section header was reported once
    entries.push({ key, value, line: lineNo });
  }
  for (const o of others) otherSection(o, sectionLine !== undefined && uwsgiLine !== undefined, issues);
  if (sectionLine === undefined) {
    // No header at all: the caller reports that once, and still checks every line, so that
    // one pass shows all the problems.
    return { entries: [...before, ...entries], hasSection: false, uwsgiLine, uwsgi };
  }
  for (const e of before) {
    issues.error(
      'EMP_CONFIG_OUTSIDE_SECTION',
      e.line,
      e.key,
      `\`${clip(e.key)}\` comes before the \`[vassal]\` header (line ${sectionLine}); move it below`,
    );
  }
  return { entries, hasSection: true, uwsgiLine, uwsgi };
}

/**
 * A section other than `[vassal]` and `[uwsgi]`. In a file with both, a name close to neither is
 * uWSGI's: a section that its `[uwsgi]` section may include (`ini = %p:prod`, as `uwsgi --ini
 * FILE:prod` reads it) and that the file had before a `[vassal]` section was added to it. Neither
 * the emperor nor `uwsgi --ini FILE` reads it: a warning says so. Anywhere else, an error (in a
 * `[uwsgi]`-only file the caller drops it: the whole file is uWSGI's).
 */
function otherSection(o: { name: string; line: number }, both: boolean, issues: IssueList): void {
  const near = suggest(o.name, both ? [SECTION, 'uwsgi'] : [SECTION]);
  if (both && near === undefined) {
    issues.warn(
      'EMP_CONFIG_UWSGI_OTHER_SECTION',
      o.line,
      undefined,
      `section \`[${clip(o.name)}]\` is read by neither the emperor (\`[vassal]\`) nor \`uwsgi --ini FILE\` (\`[uwsgi]\`): uWSGI reads it only where \`[uwsgi]\` includes it (\`ini = %p:${clip(o.name)}\`)`,
    );
    return;
  }
  const hint =
    near === undefined ? 'a vassal file has only a `[vassal]` section' : `did you mean \`[${near}]\`?`;
  issues.error(
    'EMP_CONFIG_UNKNOWN_SECTION',
    o.line,
    undefined,
    `unknown section \`[${clip(o.name)}]\`: ${hint}`,
  );
}

/** Long junk (binary, minified files) would flood the terminal. */
export function clip(s: string, max = 60): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}
