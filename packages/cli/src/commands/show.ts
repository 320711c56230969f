// `emperor show NAME [--json]`: the vassal as the emperor runs it.
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { configLines } from '../show-config.js';

interface Shown {
  name: string;
  file: string;
  state: string;
  generation: number;
  argv: string[];
  chdir: string;
  environment: Record<string, string> | null;
  environment_error: string | null;
  sockets: { name: string | null; address: string; fd: number }[];
  uwsgi_sockets?:
    | {
        key: string;
        address: string;
        line: number;
        owned: boolean;
        fd: number | null;
        reason: string | null;
      }[]
    | null;
  watched_files: string[];
  /** Absent from an older emperor's answer. */
  env_files?: string[];
  /** Absent from an older emperor's answer. */
  touch_reload?: { path: string; exists: boolean; watching: boolean }[];
  log: string;
  instances: { index: number; generation: number; pid: number | null; state: string }[];
  config: Record<string, unknown>;
  /** The file's own version, when it is not the one running (a reload that could not start). */
  not_applied?: { argv: string[]; reason: string | null } | null;
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export const showCommand = daemonCommand({
  usage: 'show <name>',
  positional: 'name',
  positionals: { min: 1, max: 1, what: 'vassal name' },
  options: { json: { type: 'boolean', describe: 'Print JSON' } },
  examples: [['$0 show shop', 'argv, environment, sockets and fds, watched files, expanded config']],
  run: async (args, socket, output) => {
    const name = args.positionals[0] ?? '';
    const s = await call<Shown>(socket, `/v1/vassals/${encodeURIComponent(name)}`);
    if (args.values.json === true) {
      output.out(JSON.stringify(s, null, 2));
      return 0;
    }
    const row = (k: string, v: string): void => {
      output.out(`${`${k}:`.padEnd(12)} ${v}`);
    };
    row('vassal', `${s.name} (${s.state}, generation ${s.generation})`);
    row('file', s.file);
    row('argv', s.argv.map(quote).join(' '));
    if (s.not_applied)
      row(
        'not applied',
        `the file says ${s.not_applied.argv.map(quote).join(' ')}${s.not_applied.reason ? ` (${s.not_applied.reason})` : ''}`,
      );
    row('chdir', s.chdir);
    row('log', s.log);
    row(
      'sockets',
      s.sockets.length === 0
        ? '-'
        : s.sockets.map((k) => `fd ${k.fd} ${k.name ? `${k.name}=` : ''}${k.address}`).join(', '),
    );
    if (s.uwsgi_sockets)
      row(
        'uwsgi',
        s.uwsgi_sockets.length === 0
          ? 'no listening address in the file'
          : s.uwsgi_sockets
              .map((u) =>
                u.owned
                  ? `${u.key} ${u.address}: owned, fd ${u.fd ?? '?'}`
                  : `${u.key} ${u.address}: bound by uWSGI (${u.reason ?? '?'})`,
              )
              .join('; '),
      );
    row('watches', s.watched_files.join(', '));
    if (s.env_files?.length) row('env files', `${s.env_files.join(', ')} (read at each start, not watched)`);
    for (const p of s.touch_reload ?? [])
      row(
        'touch-reload',
        `${p.path} (${p.watching ? 'watching' : 'not watched: retrying'}, ${p.exists ? 'exists' : 'missing'})`,
      );
    row(
      'instances',
      s.instances.length === 0
        ? '-'
        : s.instances
            .map((i) => `${i.index}: pid ${i.pid ?? '-'} ${i.state} (generation ${i.generation})`)
            .join(', '),
    );
    output.out('environment:');
    if (s.environment_error) output.out(`  (cannot build it: ${s.environment_error})`);
    for (const [k, v] of Object.entries(s.environment ?? {}).sort(([a], [b]) => a.localeCompare(b)))
      output.out(`  ${k}=${v}`);
    output.out('config (as read, defaults included):');
    for (const line of configLines(s.config)) output.out(`  ${line}`);
    return 0;
  },
});
