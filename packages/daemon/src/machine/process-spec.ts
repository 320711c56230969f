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
    c.watchdogMs,
  ];
}

/** True when two configs bind the same owned sockets the same way: a reload can keep them. */
export function sameSockets(a: VassalConfig, b: VassalConfig): boolean {
  return JSON.stringify(socketSpec(a)) === JSON.stringify(socketSpec(b));
}

function socketSpec(c: VassalConfig): unknown[] {
  return [c.sockets.map((s) => [s.name, s.address]), c.backlog, c.socketMode, c.socketOwner];
}

/** True when two configs differ in their side daemon or cron lines and in nothing else. */
export function sameButSides(a: VassalConfig, b: VassalConfig): boolean {
  const sides = (c: VassalConfig): string => JSON.stringify([c.attachDaemons, c.smartAttachDaemons, c.crons]);
  if (sides(a) === sides(b)) return false;
  const rest = (c: VassalConfig): string =>
    JSON.stringify({ ...c, attachDaemons: [], smartAttachDaemons: [], crons: [] });
  return rest(a) === rest(b);
}
