// `GET /v1/vassals/NAME`: the vassal as the emperor runs it: expanded config, argv, environment,
// sockets with the fds instances get them on, and the files whose change reloads it.
import type { VassalRunner } from '../runner/vassal-runner.js';
import { childEnv } from '../runner/child-env.js';
import type { TouchPath } from '../sources/touch-reload.js';

/** The first fd of owned sockets in an instance (sd_listen_fds' SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

export function showVassal(
  runner: VassalRunner,
  baseEnv: Readonly<Record<string, string | undefined>>,
  touchReloads: readonly TouchPath[] = [],
): Record<string, unknown> {
  const v = runner.vassal;
  const c = v.config;
  let environment: Record<string, string> | null = null;
  let environmentError: string | null = null;
  try {
    environment = childEnv(c, { generation: v.generation, index: 0 }, baseEnv);
  } catch (err) {
    environmentError = err instanceof Error ? err.message : String(err);
  }
  return {
    name: v.name,
    file: c.file,
    state: v.state,
    generation: v.generation,
    argv: [...c.argv],
    chdir: c.chdir,
    environment,
    environment_error: environmentError,
    sockets: c.sockets.map((s, i) => ({
      name: s.name ?? null,
      address: s.address,
      fd: LISTEN_FDS_START + i,
    })),
    // A `[uwsgi]` file: each address uWSGI listens on, owned (with its fd) or bound by uWSGI (why).
    uwsgi_sockets:
      c.uwsgi?.listeners.map((l) => ({
        key: l.key,
        address: l.address,
        line: l.line,
        owned: l.owned,
        fd: l.owned ? LISTEN_FDS_START + c.sockets.indexOf(l.spec) : null,
        reason: l.owned ? null : l.reason,
      })) ?? null,
    // What a change of reloads the vassal; env files are read at each start, not watched.
    watched_files: [c.file, ...c.touchReload],
    env_files: c.envFiles,
    // The file's `touch-reload` paths as they are watched now: a missing one is waited for.
    touch_reload: touchReloads.map((p) => ({ path: p.path, exists: p.exists, watching: p.watching })),
    log: runner.log.path,
    instances: v.instances.map((i) => ({
      index: i.index,
      generation: i.generation,
      pid: i.pid ?? null,
      state: i.state,
    })),
    config: plain(c),
    // The file says something else than what runs: a reload or restart of it could not start.
    not_applied: v.fileConfig === c ? null : { argv: [...v.fileConfig.argv], reason: v.reason ?? null },
  };
}

/** The config as JSON can carry it (sets and maps become arrays and objects). */
function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v)),
  ) as unknown;
}
