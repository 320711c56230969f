// A file descriptor the emperor owns: closed exactly once, with its watch stopped before the fd
// number can be reused (libuv must never poll an fd that was closed under it).
import { addon, type WatchHandle } from './binding.js';
import { makeSocketError, socketError } from './errors.js';

/** A running `watchReadable`; `close()` is idempotent and never throws. */
export interface Watch {
  close(): void;
}

export abstract class OwnedFd {
  readonly fd: number;
  /** The address as the emperor prints it; used in every error message. */
  readonly address: string;
  #closed = false;
  #watch: WatchHandle | undefined;

  /** @internal the functions of this package create owned fds */
  constructor(fd: number, address: string) {
    this.fd = fd;
    this.address = address;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Calls `callback` from the event loop when the fd is readable: a connection is pending on a
   * listening socket, or a datagram has arrived. Level-triggered: it is called again on every turn
   * of the loop for as long as the fd stays readable, so the callback drains it (`receive()`) or
   * closes the watch (on-demand wake-up). While active, the watch keeps the process alive, like a
   * server does. One watch per fd at a time. On a poll error the callback gets it, once, and the
   * watch stops.
   */
  watchReadable(callback: (error: Error | undefined) => void): Watch {
    if (this.#closed) throw new Error(`cannot watch ${this.address}: it is closed`);
    if (this.#watch) throw new Error(`cannot watch ${this.address}: it is already watched`);
    const native = addon();
    let handle: WatchHandle | undefined;
    const stop = (): void => {
      if (handle === undefined || this.#watch !== handle) return;
      native.unwatch(handle);
      this.#watch = undefined;
    };
    try {
      handle = native.watch(this.fd, (errno) => {
        if (errno === 0) {
          callback(undefined);
          return;
        }
        stop();
        callback(makeSocketError(errno, 'poll', 'watch', this.address));
      });
    } catch (error) {
      throw socketError(error, 'watch', this.address);
    }
    this.#watch = handle;
    return { close: stop };
  }

  /** Stops the watch, if any, then closes the fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watch) addon().unwatch(this.#watch);
    this.#watch = undefined;
    try {
      addon().closeFd(this.fd);
    } catch (error) {
      throw socketError(error, 'close', this.address);
    }
    this.afterClose();
  }

  /** Cleanup that needs the fd gone first (removing a unix socket file). */
  protected afterClose(): void {
    // nothing by default
  }

  protected assertOpen(action: string): void {
    if (this.#closed) throw new Error(`cannot ${action} ${this.address}: it is closed`);
  }
}
