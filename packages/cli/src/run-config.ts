// The `emperor run --config FILE` reader. The file is INI as vassal files are (docs/cli.md):
// an optional `[emperor]` section, `key = value` lines, `;` or `#` comment lines, no inline
// comments, and `vassals` repeatable. Read line by line rather than with the `ini` package,
// which keeps no line numbers (errors must say FILE:LINE), keeps only the last of a repeated
// key, cuts values at `;` and `#`, and would add a dependency to every install of the CLI.
import { readFileSync } from 'node:fs';
import { suggest as nearest } from '@emperor/config/suggest';

export const RUN_CONFIG_KEYS = [
  'vassals',
  'log-dir',
  'control',
  'control-group',
  'metrics',
  'dashboard',
  'log-level',
  'containment',
  'uwsgi',
  'state-dir',
  'node-name',
  'etcd-cacert',
  'etcd-cert',
  'etcd-key',
  'etcd-user',
  'etcd-password-file',
  'tyrant',
] as const;

export const LOG_LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error'];
export const CONTAINMENTS: readonly string[] = ['auto', 'cgroup', 'subreaper'];

export type RunConfigKey = (typeof RUN_CONFIG_KEYS)[number];

export interface RunConfig {
  readonly vassals?: readonly string[];
  readonly single: Partial<Record<Exclude<RunConfigKey, 'vassals'>, string>>;
  /** `FILE:LINE` of a single key, for errors found when its value is used (`metrics = abc`). */
  readonly where: Partial<Record<Exclude<RunConfigKey, 'vassals'>, string>>;
}

export class RunConfigError extends Error {
  readonly code = 'EMP_RUN_CONFIG';
}

export function readRunConfig(path: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'a directory, not a file'
            : (code ?? String(err));
    throw new RunConfigError(`--config ${path}: ${why}`);
  }
  return parseRunConfig(text, path);
}

export function parseRunConfig(text: string, path: string): RunConfig {
  const vassals: string[] = [];
  const single: Partial<Record<RunConfigKey, string>> = {};
  const where: Partial<Record<RunConfigKey, string>> = {};
  const seenAt = new Map<string, number>();
  let section: string | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const fail = (message: string): never => {
      throw new RunConfigError(`${path}:${i + 1}: ${message}`);
    };
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      if (header[1]?.trim() !== 'emperor' || section !== undefined)
        fail(`section \`${line}\`: the file takes one \`[emperor]\` section (or none), then its keys`);
      section = 'emperor';
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) fail(`\`${line.slice(0, 60)}\` is not \`key = value\``);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!(RUN_CONFIG_KEYS as readonly string[]).includes(key)) {
      const near = nearest(key, RUN_CONFIG_KEYS);
      fail(
        `unknown key \`${key}\`; ${near ? `did you mean \`${near}\`?` : `valid keys: ${RUN_CONFIG_KEYS.join(', ')}`}`,
      );
    }
    if (value === '') fail(`\`${key}\` has no value`);
    if (key === 'log-level' && !LOG_LEVELS.includes(value))
      fail(`\`log-level\` must be one of ${LOG_LEVELS.join(', ')}; got \`${value.slice(0, 40)}\``);
    if (key === 'containment' && !CONTAINMENTS.includes(value))
      fail(`\`containment\` must be one of ${CONTAINMENTS.join(', ')}; got \`${value.slice(0, 40)}\``);
    if (key === 'vassals') {
      vassals.push(value);
      return;
    }
    const before = seenAt.get(key);
    if (before !== undefined)
      fail(`\`${key}\` is given twice (first on line ${before}); only \`vassals\` repeats`);
    seenAt.set(key, i + 1);
    single[key as RunConfigKey] = value;
    where[key as RunConfigKey] = `${path}:${i + 1}`;
  });
  return { ...(vassals.length > 0 ? { vassals } : {}), single, where };
}

/**
 * Uses a value (sync or async): when it came from the file (`config` given), an error that using
 * it throws names the file and line, as every other error of the file does.
 */
export function useValue<T>(
  config: RunConfig | undefined,
  key: Exclude<RunConfigKey, 'vassals'>,
  use: () => T,
): T {
  const where = config?.where[key];
  if (where === undefined) return use();
  const rethrow = (err: unknown): never => {
    const message = (err as Error).message.replace(/^--[\w-]+:? /, '');
    throw new RunConfigError(`${where}: \`${key}\` ${message}`);
  };
  try {
    const used = use();
    return used instanceof Promise ? (used.catch(rethrow) as T) : used;
  } catch (err) {
    return rethrow(err);
  }
}
