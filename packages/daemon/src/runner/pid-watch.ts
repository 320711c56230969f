// Tells when a process that is not our child is gone (a `smart-attach-daemon`, adopted or forked
// away from its launcher). A pidfd becomes readable when its process exits, whoever its parent is,
// and the event loop polls it: nothing runs on a timer. The pidfd is opened for whatever process
// has the pid then, so its start time is checked after opening: a reused pid is never taken for
// the one meant. A zombie counts as gone (in subreaper mode it is our child until the sweep reaps
// it). Before Linux 5.3 (no pidfd_open) the process is looked at in /proc once a second instead.
import { watchProcessExit } from '@emperor/native';
import { isAlive } from '../os/process-tree.js';

/** How often a watched process is looked at where there are no pidfds. */
export const PID_WATCH_MS = 1000;

/** Calls `onGone` once when the process is gone; the returned function stops watching. */
export function watchPid(pid: number, startTime: bigint, onGone: () => void): () => void {
  let watch;
  try {
    watch = watchProcessExit(pid, onGone);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOSYS') throw error;
    return pollPid(pid, startTime, onGone);
  }
  if (watch === null || !isAlive(pid, startTime)) {
    // Gone already, or the pid is another process's now: told on the next turn, as a watch would.
    watch?.close();
    const timer = setImmediate(onGone);
    return () => {
      clearImmediate(timer);
    };
  }
  return () => {
    watch.close();
  };
}

function pollPid(pid: number, startTime: bigint, onGone: () => void): () => void {
  const timer = setInterval(() => {
    if (isAlive(pid, startTime)) return;
    clearInterval(timer);
    onGone();
  }, PID_WATCH_MS);
  return () => {
    clearInterval(timer);
  };
}
