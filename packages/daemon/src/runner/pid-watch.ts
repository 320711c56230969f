// Tells when a process that is not our child is gone (a `smart-attach-daemon`, adopted or forked
// away from its launcher). Node has no pidfd_open, and the addon does not wrap it: the process is
// looked at in /proc once a second, by pid and start time, so that a reused pid is never taken
// for it. A zombie counts as gone (in subreaper mode it is our child until the sweep reaps it).
import { isAlive } from '../os/process-tree.js';

/** How often a watched process is looked at. */
export const PID_WATCH_MS = 1000;

/** Calls `onGone` once when the process is gone; the returned function stops watching. */
export function watchPid(pid: number, startTime: bigint, onGone: () => void): () => void {
  const timer = setInterval(() => {
    if (isAlive(pid, startTime)) return;
    clearInterval(timer);
    onGone();
  }, PID_WATCH_MS);
  return () => {
    clearInterval(timer);
  };
}
