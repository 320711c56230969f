import { readFileSync } from 'node:fs';
import type { VassalConfig } from '@emperor/config';

/** Variables systemd gives the emperor itself; passing them on would make apps talk to systemd. */
const SYSTEMD_OWN = /^(NOTIFY_SOCKET|LISTEN_[A-Z_]+|WATCHDOG_[A-Z_]+)$/;

/** Which process of the vassal: an app instance, or (`kind: 'attach'`, generation 0) side daemon `index`. */
export interface InstanceIdentity {
  readonly kind?: 'app' | 'attach';
  readonly generation: number;
  readonly index: number;
  /** A recycling replacement's turn: it runs beside the instance it replaces, with the same index. */
  readonly turn?: number | undefined;
}

/** Reads one `env-file` (systemd EnvironmentFile= syntax, minus its rarely used quoting rules). */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line
      .slice(0, eq)
      .trim()
      .replace(/^export\s+/, '');
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]))
      value = value.slice(1, -1);
    out[name] = value;
  }
  return out;
}

/**
 * The environment of one instance: the emperor's (or only PATH with `clear-env`), then each
 * `env-file`, then `env` lines, then the EMPEROR_* variables. Throws when an env-file is unreadable.
 */
export function childEnv(
  config: VassalConfig,
  id: InstanceIdentity,
  base: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  if (config.clearEnv) {
    if (base.PATH !== undefined) env.PATH = base.PATH;
  } else {
    for (const [k, v] of Object.entries(base)) if (v !== undefined && !SYSTEMD_OWN.test(k)) env[k] = v;
  }
  if (config.user) {
    // The emperor's own USER/LOGNAME would lie about who the app is (HOME is left as it is: the
    // lookup gives no home directory; set it with `env` if the app needs it).
    env.USER = config.user.name;
    env.LOGNAME = config.user.name;
  }
  for (const file of config.envFiles) Object.assign(env, readEnvFile(file));
  Object.assign(env, config.env);
  // Which emperor started it (`<pid>.<start time>`): its successor finds what a killed one left
  // behind by it, even a process that left its group (state-file.ts). Kept with `clear-env` too.
  if (base.EMPEROR_ID !== undefined) env.EMPEROR_ID = base.EMPEROR_ID;
  env.EMPEROR_VASSAL = config.name;
  if (id.kind === 'attach') {
    // A side daemon is no instance (the SDK must not take it for one): its own tag instead.
    delete env.EMPEROR_INSTANCE;
    delete env.EMPEROR_GENERATION;
    delete env.EMPEROR_TURN;
    env.EMPEROR_ATTACH = String(id.index);
    return env;
  }
  delete env.EMPEROR_ATTACH; // an emperor run as another's side daemon: its apps are not
  env.EMPEROR_INSTANCE = String(id.index);
  env.EMPEROR_GENERATION = String(id.generation);
  // Tells a replacement's orphans from those of the instance it replaces (subreaper mode), which
  // are killed when that one ends.
  if (id.turn) env.EMPEROR_TURN = String(id.turn);
  else delete env.EMPEROR_TURN;
  return env;
}
