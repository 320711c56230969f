// The per-instance NOTIFY_SOCKET: a unix datagram socket in the abstract namespace that receives
// sd_notify messages (`READY=1`, `STATUS=...`) with the sender's pid. Node has no such socket.
import { addon } from './binding.js';
import { socketError } from './errors.js';
import { OwnedFd } from './owned-fd.js';

/** An abstract name is at most 107 bytes: sun_path minus the leading NUL. */
export const ABSTRACT_NAME_MAX = 107;

export interface Datagram {
  /** The message as sent, decoded as UTF-8 (sd_notify: `KEY=value` lines). */
  data: string;
  /**
   * The sender's pid as the kernel reports it (SCM_CREDENTIALS). Note that `systemd-notify` run
   * as root reports its parent's pid, and as another user its own (a child of the instance).
   */
  pid: number | undefined;
  /** The sender's uid as the kernel reports it. */
  uid: number | undefined;
  /** The message was longer than 4096 bytes and was cut (systemd drops such messages). */
  truncated: boolean;
}

export class DatagramSocket extends OwnedFd {
  /**
   * Every message waiting in the queue, oldest first, without blocking (at most 256 per call; a
   * watch calls again while more wait). File descriptors sent along (`BARRIER=1`, `FDSTORE=1`)
   * are closed at once: that is what lets `systemd-notify`'s barrier complete.
   */
  receive(): Datagram[] {
    this.assertOpen('receive on');
    try {
      return addon().recvDatagrams(this.fd);
    } catch (error) {
      throw socketError(error, 'receive on', this.address);
    }
  }
}

/**
 * Opens a datagram socket bound to an abstract address, written as `NOTIFY_SOCKET` writes it:
 * `@emperor/shop/1` (the `@` stands for the leading NUL). Pass the same string to the instance as
 * `NOTIFY_SOCKET`. The kernel attaches the sender's pid to each message (SO_PASSCRED).
 */
export function openDatagram(address: string): DatagramSocket {
  const name = address.slice(1);
  const bytes = Buffer.byteLength(name);
  if (!address.startsWith('@') || bytes === 0 || name.includes('\0')) {
    throw new TypeError(
      `Expected an abstract socket address such as "@emperor/app/0", got ${JSON.stringify(address)}`,
    );
  }
  const hints = {
    ENAMETOOLONG: `the name is ${bytes} bytes long, abstract socket names allow at most ${ABSTRACT_NAME_MAX}`,
    EADDRINUSE: 'address already in use: another socket has this abstract name',
  };
  try {
    return new DatagramSocket(addon().openDatagram(name), address);
  } catch (error) {
    throw socketError(error, 'bind', address, hints);
  }
}

/**
 * Sends one datagram to a unix socket: `@name` (abstract) or a path, as `NOTIFY_SOCKET` gives it.
 * The emperor's own sd_notify to systemd. Throws with the errno when nobody receives it.
 */
export function sendDatagram(address: string, data: string): void {
  if (address === '' || address === '@' || address.includes('\0')) {
    throw new TypeError(
      `Expected a unix socket address such as "@name" or "/run/x", got ${JSON.stringify(address)}`,
    );
  }
  const bytes = Buffer.byteLength(data);
  if (bytes > 4095) {
    // The addon would cut it; systemd would drop a longer one anyway.
    throw new RangeError(`a datagram of ${bytes} bytes is over the 4095 bytes sd_notify takes`);
  }
  try {
    addon().sendDatagram(address, data);
  } catch (error) {
    throw socketError(error, 'send to', address);
  }
}
