// Readiness and status messages from one instance: sd_notify datagrams on its own NOTIFY_SOCKET
// (`ready = notify`), or lines on the pipe named by EMPEROR_NOTIFY_FD (`ready = fd`, as s6 does).
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { openDatagram, type DatagramSocket } from '@emperor/native';

export interface NotifyMessage {
  readonly ready: boolean;
  readonly status: string | undefined;
  readonly watchdog: boolean;
}

/** Longest unfinished line kept from an fd channel: a runaway writer cannot grow the emperor. */
const MAX_LINE = 4096;

/** Parses sd_notify `KEY=value` lines; on the fd channel an empty line also means READY (s6). */
export function parseNotify(text: string, emptyLineIsReady: boolean): NotifyMessage {
  let ready = false;
  let watchdog = false;
  let status: string | undefined;
  for (const line of text.split('\n')) {
    if (line === 'READY=1' || (emptyLineIsReady && line === '')) ready = true;
    else if (line === 'WATCHDOG=1') watchdog = true;
    else if (line.startsWith('STATUS=')) status = line.slice('STATUS='.length);
  }
  return { ready, status, watchdog };
}

let sequence = 0;

export class NotifyChannel {
  readonly #socket: DatagramSocket;

  private constructor(socket: DatagramSocket) {
    this.#socket = socket;
  }

  /** One datagram socket per instance, so a message tells which instance sent it (systemd-notify
   * run as root reports its parent's pid, not the instance's). */
  static open(): NotifyChannel {
    sequence += 1;
    // Abstract names have no permissions: an unguessable part keeps other local users from
    // taking the name first.
    const nonce = randomBytes(6).toString('hex');
    return new NotifyChannel(openDatagram(`@emperor/${process.pid}/${sequence}/${nonce}`));
  }

  get address(): string {
    return this.#socket.address;
  }

  /**
   * `accept(pid)` decides on the sender the kernel reports (systemd's NotifyAccess=all within
   * the instance: its main process or anything in its process group).
   */
  listen(
    onMessage: (m: NotifyMessage) => void,
    accept: (senderPid: number | undefined, senderUid: number | undefined) => boolean,
  ): void {
    this.#socket.watchReadable((err) => {
      if (err) return; // the socket is being closed with its instance
      for (const d of this.#socket.receive()) if (accept(d.pid, d.uid)) onMessage(parseNotify(d.data, false));
    });
  }

  close(): void {
    this.#socket.close();
  }

  /** Reads the fd channel: each complete line is a message. */
  static readLines(stream: Readable, onMessage: (m: NotifyMessage) => void): void {
    let tail = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (tail + chunk).split('\n');
      tail = (lines.pop() ?? '').slice(-MAX_LINE);
      if (lines.length > 0) onMessage(parseNotify(lines.join('\n'), true));
    });
    stream.on('error', () => undefined); // the instance closed its end: nothing more to read
  }
}
