// What a vassal file that says nothing else gets (SPEC §3), in one place: the `[vassal]` reader
// (validate.ts), the `[uwsgi]` reader (uwsgi.ts) and the machine's tests start from it. The
// fields every file names for itself (name, command, sockets) and `reload`, whose default depends
// on the sockets, are not here.
import type { VassalConfig } from './types.js';

export type VassalDefaults = Omit<
  VassalConfig,
  'name' | 'file' | 'exec' | 'argv' | 'chdir' | 'sockets' | 'reload' | 'uwsgi'
>;

export const DEFAULTS: VassalDefaults = Object.freeze({
  shell: false,
  env: Object.freeze({}),
  clearEnv: false,
  processes: 1,
  retireNice: 0,
  socketMode: 0o660,
  socketOwner: undefined,
  backlog: 1024,
  onDemand: false,
  idleMs: 0,
  ready: Object.freeze({ kind: 'started' as const }),
  readyTimeoutMs: 30_000,
  stopSignal: 'SIGTERM' as const,
  stopTimeoutMs: 30_000,
  restart: 'always' as const,
  restartDelayMs: 1000,
  restartDelayMaxMs: 60_000,
  envFiles: Object.freeze([]),
  touchReload: Object.freeze([]),
  user: undefined,
  group: undefined,
  umask: 0o022,
  maxRssBytes: undefined,
  maxLifetimeMs: undefined,
  watchdogMs: undefined,
  attachDaemons: Object.freeze([]),
  smartAttachDaemons: Object.freeze([]),
  crons: Object.freeze([]),
  log: undefined,
  logTimestamps: false,
  logMaxSizeBytes: 10 * 2 ** 20,
  logBackups: 5,
  placeholders: Object.freeze({}),
  nodes: Object.freeze(['*']),
});
