import type { VassalConfig } from '@emperor/config';

/**
 * True when two configs would start the same processes. A `signal:` reload keeps the running
 * processes, so it only applies when nothing the emperor passes at spawn time has changed.
 */
export function sameProcessSpec(a: VassalConfig, b: VassalConfig): boolean {
  return JSON.stringify(processSpec(a)) === JSON.stringify(processSpec(b));
}

function processSpec(c: VassalConfig): unknown[] {
  return [
    c.argv,
    c.chdir,
    c.env,
    c.clearEnv,
    c.processes,
    c.sockets,
    c.user,
    c.group,
    c.umask,
    c.envFiles,
    c.ready,
  ];
}
