// Tells when any process exits, our child or not (a self-forking daemon that init adopted): a
// pidfd (Linux >= 5.3) becomes readable when its process exits, and the emperor's event loop polls
// it like a socket, so nothing is looked at on a timer.
import { constants } from 'node:os';
import { addon, type WatchHandle } from './binding.js';
import { withErrnoCode } from './errors.js';

/** A running watch; `close()` stops it and closes the pidfd, is idempotent and never throws. */
export interface ProcessWatch {
  close(): void;
}

/**
 * Calls `onExit` once, from the event loop, when process `pid` has exited (a zombie counts: it
 * has exited). Returns `null` when there is no such process now (ESRCH). Throws an error with a
 * `code` (`ENOSYS` before Linux 5.3) when pidfds cannot be had. The pidfd refers to the process
 * that has `pid` at the time of the call: check that it is the one meant (its start time) after.
 */
export function watchProcessExit(pid: number, onExit: () => void): ProcessWatch | null {
  const native = addon();
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch (error) {
    if ((error as { errno?: unknown }).errno === constants.errno.ESRCH) return null;
    throw withErrnoCode(error);
  }
  let handle: WatchHandle | undefined;
  const close = (): void => {
    if (fd < 0) return;
    if (handle !== undefined) native.unwatch(handle);
    handle = undefined;
    native.closeFd(fd);
    fd = -1;
  };
  try {
    // A pidfd stays readable once its process has exited: the first callback closes it.
    handle = native.watch(fd, () => {
      close();
      onExit();
    });
  } catch (error) {
    close();
    throw error;
  }
  return { close };
}
