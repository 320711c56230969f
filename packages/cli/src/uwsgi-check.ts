// What `emperor check` adds for `[uwsgi]` files: the uWSGI binary is there and loads the plugins
// the file names. The rest of the file is uWSGI's, checked by uWSGI when it starts.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { ConfigIssue, VassalConfig } from '@emperor/config';

export const UWSGI_NOT_CHECKED =
  "a uWSGI vassal: checked are its listening addresses (owned or not, conflicts with other vassals), the uwsgi binary and the plugins it names; the rest of the file (the app, options, includes) is uWSGI's, checked when uWSGI starts";

/** Finds `program` as execvp(3) would: a path as is, else the first executable in PATH. */
export function findProgram(program: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = program.includes('/')
    ? [program]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, program));
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Errors for a `[uwsgi]` vassal whose binary or plugins are missing; `seen` caches plugin probes. */
export function uwsgiIssues(
  config: VassalConfig,
  file: string,
  seen: Map<string, string | undefined>,
): ConfigIssue[] {
  const u = config.uwsgi;
  if (u === undefined) return [];
  const issue = (
    code: ConfigIssue['code'],
    line: number | undefined,
    key: string | undefined,
    message: string,
  ) => ({
    code,
    severity: 'error' as const,
    file,
    line,
    key,
    message,
  });
  const program = config.argv[0] ?? 'uwsgi';
  const binary = findProgram(program);
  if (binary === undefined)
    return [
      issue(
        'EMP_CONFIG_UWSGI_BINARY',
        undefined,
        undefined,
        `the emperor runs this file with \`${program}\`, which is not ${program.includes('/') ? 'an executable file' : 'on PATH'}: install uWSGI (apt-get install uwsgi) or name the binary with \`emperor run --uwsgi PATH\` (and \`emperor check --uwsgi PATH\`)`,
      ),
    ];
  const dirs = u.pluginsDirs.flatMap((d) => ['--plugins-dir', d]);
  const issues: ConfigIssue[] = [];
  for (const plugin of u.plugins) {
    const key = `${binary}\0${dirname(config.file)}\0${dirs.join('\0')}\0${plugin.name}`;
    if (!seen.has(key)) {
      // `--need-plugin` makes uWSGI exit 1 when it cannot load the plugin; `--version` then exits.
      const r = spawnSync(binary, [...dirs, '--need-plugin', plugin.name, '--version'], {
        cwd: dirname(config.file),
        encoding: 'utf8',
        timeout: 20_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const why = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /UNABLE|unable|cannot/.test(l));
      seen.set(
        key,
        r.status === 0 ? undefined : (why?.trim() ?? `exit status ${String(r.status ?? r.signal)}`),
      );
    }
    const failure = seen.get(key);
    if (failure !== undefined)
      issues.push(
        issue(
          'EMP_CONFIG_UWSGI_PLUGIN',
          plugin.line,
          'plugins',
          `uWSGI (${binary}) cannot load the plugin \`${plugin.name}\`: ${failure}; install the package that ships it (Debian: uwsgi-plugin-${plugin.name}) or add its directory with \`plugins-dir\``,
        ),
      );
  }
  return issues;
}
