// `emperor check FILE|DIR... [--json]`: validate vassal files without a daemon (SPEC §5).
// Each file alone, then across the files given: a vassal name defined twice, and two vassals
// owning one address. A directory stands for the vassal files the emperor would load from it.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  crossVassalIssues,
  formatIssue,
  readVassalFile,
  vassalNameOf,
  type ConfigIssue,
  type VassalConfig,
} from '@emperor/config';
import { getentLookup } from '../system-lookup.js';
import { UWSGI_NOT_CHECKED, uwsgiIssues } from '../uwsgi-check.js';
import type { CommandModule, Output } from './command.js';

interface Checked {
  /** The path as the user gave it (or DIR/NAME.ini for a directory's files). */
  readonly file: string;
  readonly name: string | undefined;
  readonly mtimeMs: number | undefined;
  readonly config: VassalConfig | undefined;
  readonly errors: ConfigIssue[];
  readonly warnings: ConfigIssue[];
}

export const check: CommandModule = {
  register: (y, describe, ctx) =>
    y.command(
      'check <paths..>',
      describe,
      (b) =>
        b
          .positional('paths', {
            describe:
              'Vassal files, or directories whose NAME.ini files are checked (other names are ignored, as the emperor ignores them)',
            type: 'string',
            array: true,
          })
          .option('json', {
            describe: 'Print one JSON object with every file, its errors, warnings and config',
            type: 'boolean',
            default: false,
          })
          .option('tyrant', {
            describe:
              'Read the files as `emperor run --tyrant` does: each runs as the owner of its file; root-owned files, a `user` naming someone else and symlinked files are refused',
            type: 'boolean',
            default: false,
          })
          .option('uwsgi', {
            describe: 'The uWSGI binary that runs `[uwsgi]` files, as given to `emperor run --uwsgi`',
            type: 'string',
            defaultDescription: 'uwsgi on PATH',
          })
          .example('$0 check /etc/emperor/vassals', 'Check every vassal the emperor would load')
          .example('$0 check shop.ini api.ini --json', 'Machine-readable result')
          .example('$0 check --tyrant /etc/uwsgi/vassals', 'As a root emperor in tyrant mode would read them')
          .epilogue(
            'Exit 0 when every file is valid, 1 when any has an error (each printed as FILE:LINE: error: message [CODE]), 2 on usage errors.',
          ),
      (args) => ctx.run(() => runCheck(args.paths ?? [], args.json, ctx.output, args.uwsgi, args.tyrant)),
    ),
};

export async function runCheck(
  paths: readonly string[],
  json: boolean,
  output: Output,
  uwsgi?: string,
  tyrant = false,
): Promise<number> {
  const { files, problems, notes } = expand(paths);
  // A directory without a vassal file is worth a warning; when nothing at all was checked, the
  // run proves nothing and fails (a mistyped directory must not pass a CI step).
  if (files.length === 0) problems.push(...notes.map((n) => ({ ...n, severity: 'error' as const })));
  const options = {
    env: process.env,
    cpus: availableParallelism(),
    lookup: getentLookup(),
    ...(uwsgi === undefined ? {} : { uwsgi }),
  };
  const probes = new Map<string, string | undefined>();
  const checked: Checked[] = [];
  for (const file of files) {
    const shown = (i: ConfigIssue): ConfigIssue => ({ ...i, file });
    const owner = tyrant ? ownerOf(file) : undefined;
    if (owner === 'symlink') {
      checked.push({
        file,
        name: vassalNameOf(basename(file)),
        mtimeMs: undefined,
        config: undefined,
        errors: [
          {
            code: 'EMP_TYRANT_SYMLINK',
            severity: 'error',
            file,
            line: undefined,
            key: undefined,
            message:
              "tyrant mode does not follow vassal files that are symlinks (the link's owner says nothing of who wrote its target): the emperor skips it; copy the file in",
          },
        ],
        warnings: [],
      });
      continue;
    }
    const r = await readVassalFile(file, owner === undefined ? options : { ...options, owner });
    checked.push({
      file,
      name: vassalNameOf(basename(file)),
      mtimeMs: mtimeOf(file),
      config: r.ok ? r.config : undefined,
      errors: r.ok ? uwsgiIssues(r.config, file, probes) : r.errors.map(shown),
      warnings: r.warnings.map(shown),
    });
  }
  const named = checked.flatMap((c) =>
    c.name === undefined ? [] : [{ file: c.file, name: c.name, config: c.config, mtimeMs: c.mtimeMs }],
  );
  for (const issue of crossVassalIssues(named))
    checked.find((c) => c.file === issue.file)?.errors.push(issue);

  const failed = checked.filter((c) => c.errors.length > 0);
  const errorCount = failed.reduce((n, c) => n + c.errors.length, 0) + problems.length;
  if (json) {
    output.out(
      JSON.stringify(
        report(checked, problems, checked.length > 0 ? notes : []),
        (_k, v: unknown) => (v === undefined ? null : v),
        2,
      ),
    );
  } else {
    for (const p of problems) output.err(formatIssue(p));
    if (files.length > 0) for (const n of notes) output.err(formatIssue(n));
    for (const c of checked) {
      if (c.errors.length === 0) output.out(`${c.file}: ok`);
      if (c.config?.uwsgi) output.out(`${c.file}: ${UWSGI_NOT_CHECKED}`);
      for (const issue of [...c.errors, ...c.warnings]) output.err(formatIssue(issue));
    }
    if (errorCount > 0) {
      const files = failed.length + problems.length;
      output.err(
        `emperor: ${errorCount} error${errorCount === 1 ? '' : 's'} in ${files} of ${checked.length + problems.length} path${checked.length + problems.length === 1 ? '' : 's'} [EMP_CONFIG_INVALID]`,
      );
    }
  }
  return errorCount > 0 ? 1 : 0;
}

/** Tyrant mode: the file's owner, as the daemon takes it (lstat: a link is not followed). */
function ownerOf(file: string): { uid: number; gid: number } | 'symlink' | undefined {
  try {
    const st = lstatSync(file);
    return st.isSymbolicLink() ? 'symlink' : { uid: st.uid, gid: st.gid };
  } catch {
    return undefined; // readVassalFile reports why
  }
}

function mtimeOf(file: string): number | undefined {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined; // readVassalFile reports why
  }
}

interface Expanded {
  readonly files: string[];
  readonly problems: ConfigIssue[];
  /** Directories that hold no vassal file, as warnings. */
  readonly notes: ConfigIssue[];
}

/** Files to check, in the order given, each once; directories expand to their vassal files. */
function expand(paths: readonly string[]): Expanded {
  const files: string[] = [];
  const problems: ConfigIssue[] = [];
  const notes: ConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (file: string): void => {
    const key = resolve(file);
    if (!seen.has(key)) {
      seen.add(key);
      files.push(file);
    }
  };
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // Not there or not readable: readVassalFile says which, with the right code.
    }
    if (!isDir) {
      add(p);
      continue;
    }
    try {
      const all = readdirSync(p).sort();
      const names = all.filter((f) => vassalNameOf(f) !== undefined);
      for (const f of names) add(join(p, f));
      if (names.length === 0) notes.push(noVassals(p, all));
    } catch (err) {
      problems.push({
        code: 'EMP_CONFIG_FILE_UNREADABLE',
        severity: 'error',
        file: p,
        line: undefined,
        key: undefined,
        message: `cannot list the directory: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
  return { files, problems, notes };
}

function noVassals(dir: string, entries: readonly string[]): ConfigIssue {
  const shown = entries
    .slice(0, 3)
    .map((e) => `\`${e}\``)
    .join(', ');
  const others =
    entries.length === 0
      ? 'the directory is empty'
      : `it ignores the ${entries.length === 1 ? 'one other name' : `${entries.length} other names`} here (${shown}${entries.length > 3 ? ', ...' : ''})`;
  return {
    code: 'EMP_CONFIG_NO_VASSALS',
    severity: 'warning',
    file: dir,
    line: undefined,
    key: undefined,
    message: `no vassal file here: the emperor loads \`NAME.ini\` files, and ${others}`,
  };
}

function report(
  checked: readonly Checked[],
  problems: readonly ConfigIssue[],
  notes: readonly ConfigIssue[],
): object {
  return {
    ok: problems.length === 0 && checked.every((c) => c.errors.length === 0),
    files: [
      ...notes.map((n) => ({
        file: n.file,
        name: undefined,
        ok: true,
        errors: [],
        warnings: [n],
        config: undefined,
      })),
      ...problems.map((p) => ({
        file: p.file,
        name: undefined,
        ok: false,
        errors: [p],
        warnings: [],
        config: undefined,
      })),
      ...checked.map((c) => ({
        file: c.file,
        name: c.name,
        ok: c.errors.length === 0,
        errors: c.errors,
        warnings: c.warnings,
        config: c.config,
        not_checked: c.config?.uwsgi ? UWSGI_NOT_CHECKED : undefined,
      })),
    ],
  };
}
