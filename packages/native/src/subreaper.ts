// The subreaper fallback of containment (emperor_reaper.c): orphans of the emperor's descendants
// are re-parented to the emperor, which must then also reap them, by pid.
import { constants } from 'node:os';
import { addon } from './binding.js';
import { withErrnoCode } from './errors.js';

/** Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), or stops being one. */
export function setChildSubreaper(on: boolean): void {
  try {
    addon().setChildSubreaper(on);
  } catch (error) {
    throw withErrnoCode(error);
  }
}

export function isChildSubreaper(): boolean {
  return addon().isChildSubreaper();
}

/**
 * Reaps `pid` if it is an exited child of ours: the exit status, `undefined` while it runs,
 * `null` when it is not our child (ECHILD: never was, or reaped already).
 */
export function reapPid(pid: number): { code: number | null; signal: number | null } | undefined | null {
  let status;
  try {
    status = addon().reapPid(pid);
  } catch (error) {
    if ((error as { errno?: unknown }).errno === constants.errno.ECHILD) return null;
    throw withErrnoCode(error);
  }
  if (status === null) return undefined;
  const [code, signal] = status;
  return { code: code >= 0 ? code : null, signal: signal > 0 ? signal : null };
}
