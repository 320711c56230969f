// Reads one of an instance's output pipes for its log, with no allocation per read.
//
// A raw pipe fd is read through a Socket with `onread`: every read lands in one scratch buffer
// shared by all pipes (reads happen one at a time on the main thread, and the consumer copies a
// chunk before returning), so a burst of output costs no garbage. When a read finds the pipe full
// (the app writes faster than a pipe-sized read at a time), the pipe is grown to 1 MiB, so the
// rest of the burst moves in 16 times fewer reads and context switches; `relax()` gives the
// kernel that memory back once the vassal is quiet. A Readable (tests) is read the usual way.
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';
import { setPipeSize } from '@emperor/native';

/** The pipe capacity while output is bursting: the unprivileged maximum (/proc/sys/fs/pipe-max-size). */
export const BURST_PIPE_BYTES = 1024 * 1024;
const DEFAULT_PIPE_BYTES = 64 * 1024;

let scratch: Buffer | undefined;

export interface OutputReader {
  /** Stops reading: the app blocks on a full pipe (backpressure). */
  pause(): void;
  resume(): void;
  /** Back to the default pipe capacity, for a vassal that went quiet after a burst. */
  relax(): void;
}

/**
 * Calls `onChunk` with every read from `source` (the chunk is only valid during the call) and
 * `onEnd` once, when the pipe is closed or fails (the app is gone).
 */
export function readOutput(
  source: Readable | number,
  onChunk: (chunk: Buffer) => void,
  onEnd: () => void,
): OutputReader {
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  if (typeof source !== 'number') {
    source.on('data', (chunk: Buffer | string) => {
      onChunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    });
    watchEnd(source, end);
    source.resume();
    return {
      pause: () => source.pause(),
      resume: () => source.resume(),
      relax: () => undefined,
    };
  }
  const fd = source;
  const buffer = (scratch ??= Buffer.allocUnsafeSlow(BURST_PIPE_BYTES));
  let capacity = DEFAULT_PIPE_BYTES;
  let grown = false;
  // Node reads into `onread.buffer` for any socket, though its types list the option for connect() only.
  const options: SocketConstructorOpts & { onread: OnReadOpts } = {
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer,
      callback: (n: number) => {
        if (n >= capacity && !grown) {
          grown = true;
          capacity = setPipeSize(fd, BURST_PIPE_BYTES) ?? capacity;
        }
        onChunk(buffer.subarray(0, n));
        return true;
      },
    },
  };
  const socket = new Socket(options);
  watchEnd(socket, end);
  socket.resume();
  return {
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    relax: () => {
      if (!grown || socket.destroyed) return;
      grown = false;
      // Refused (EBUSY) while more than the default is in the pipe: the next burst asks again anyway.
      capacity = setPipeSize(fd, DEFAULT_PIPE_BYTES) ?? capacity;
    },
  };
}

function watchEnd(stream: Readable, end: () => void): void {
  stream.once('end', end);
  stream.once('close', end);
  // A read error on a pipe means the app is gone; 'close' follows and ends the reading.
  stream.on('error', () => undefined);
}
