// Default locations (SPEC §5). Kept free of heavy imports: the CLI loads it for every command.
import { join } from 'node:path';
import { homedir } from 'node:os';

export interface EmperorPaths {
  readonly vassals: string;
  readonly logDir: string;
  readonly runtimeDir: string;
  readonly control: string;
  /** What outlives a reboot: the cache of each etcd source (docs/fleet.md). Never under /run. */
  readonly stateDir: string;
}

export function defaultPaths(
  env: Readonly<Record<string, string | undefined>> = process.env,
  uid: number = process.getuid?.() ?? 0,
): EmperorPaths {
  if (uid === 0) {
    return {
      vassals: '/etc/emperor/vassals',
      logDir: '/var/log/emperor',
      runtimeDir: '/run/emperor',
      control: env.EMPEROR_CONTROL ?? '/run/emperor/control.sock',
      stateDir: '/var/lib/emperor',
    };
  }
  const home = env.HOME ?? homedir();
  const config = env.XDG_CONFIG_HOME ?? join(home, '.config');
  const state = env.XDG_STATE_HOME ?? join(home, '.local', 'state');
  const runtimeDir = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'emperor') : `/tmp/emperor-${uid}`;
  return {
    vassals: join(config, 'emperor', 'vassals'),
    logDir: join(state, 'emperor', 'logs'),
    runtimeDir,
    control: env.EMPEROR_CONTROL ?? join(runtimeDir, 'control.sock'),
    stateDir: join(state, 'emperor'),
  };
}
