// One writer per vassal log file, shared by every instance and generation of the vassal.
//
// A fast writer is slowed to the disk's pace, as if it wrote the file itself: once `PAUSE_BYTES`
// wait for the disk, its pipes are not read until half of that is written (the app blocks on a
// full pipe; nothing is lost). A disk that cannot keep up must not block the app for long (SPEC
// §4): when a pause has lasted `MAX_PAUSE_MS`, reading resumes, output is queued in memory up to
// `maxBufferedBytes`, and beyond that it is dropped and reported by one `[emperor] dropped N bytes
// of output` line once the queue has room again. Verbatim output is copied, read by read, into
// 1 MiB slabs that become large writes; only `log-timestamps` looks at lines. After a burst the
// slabs, the grown pipes and glibc's free heap go back to the kernel.
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { trimMemory } from '@emperor/native';
import { byteLength, firstLineEnd, lastByte, lastLineEnd, splitAt } from './buffer-lines.js';
import { readOutput, type OutputReader } from './output-reader.js';

export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** Backlog at which the pipes stop being read (capped at half of `maxBufferedBytes`). */
export const PAUSE_BYTES = 2 * 1024 * 1024;
/** A pause longer than this means the disk cannot keep up: read again, and drop past the cap. */
export const MAX_PAUSE_MS = 1000;
/** Quiet this long after output: slabs, grown pipes and free heap go back to the kernel. */
const IDLE_MS = 1000;
/** close() waits this long at most for the pipes of exited apps to be read to their end. */
const CLOSE_DRAIN_MS = 1000;
/** Output copied into one slab, written together. */
const SLAB_BYTES = 1024 * 1024;
/** A read this small into an idle log is copied on its own, not into a slab. */
const SMALL_BYTES = 16 * 1024;
/** Emptied slabs kept for reuse during a burst. */
const SPARE_SLABS = 2;
/** malloc_trim after a quiet period only when at least this much went through since the last one. */
const TRIM_AFTER_BYTES = 8 * 1024 * 1024;
/** With timestamps, a line longer than this is written in pieces, each with its own prefix. */
export const MAX_LINE_BYTES = 64 * 1024;
const RECENT_LINES = 20;
const RECENT_LINE_CHARS = 500;
/** One writev at most this big, so a rotation check never waits behind a huge batch. */
const BATCH_BYTES = 2 * 1024 * 1024;
const BATCH_BUFFERS = 512;
const RETRY_MS = 1000;
const NL = 0x0a;

export type OutputSource = 'stdout' | 'stderr';

export interface VassalLogOptions {
  /** The log file; its directory is created when missing. */
  readonly path: string;
  /** Rotate before the file would grow past this size; 0 never rotates. */
  readonly maxSizeBytes: number;
  /** Rotated files kept as `path.1` (newest) .. `path.N`; 0 truncates the file instead. */
  readonly backups: number;
  /** Prefix each line with `<ISO-8601 time> <label> `. */
  readonly timestamps: boolean;
  /** Output held in memory once the disk has failed to keep up for `MAX_PAUSE_MS`; beyond it output is dropped. */
  readonly maxBufferedBytes?: number;
  /** How long a pause may hold the apps back before the disk counts as not keeping up. */
  readonly maxPauseMs?: number;
  readonly logger?: Logger;
  /** Milliseconds since the epoch, for the timestamp prefixes. */
  readonly now?: () => number;
  /** Awaited before each write to the file: tests use it to play a slow disk. */
  readonly beforeWrite?: () => Promise<void>;
}

export interface VassalLogStats {
  /** Bytes written to the file (rotated files included). */
  readonly writtenBytes: number;
  /** App output dropped because the queue was full or a write failed. */
  readonly droppedBytes: number;
  /** Bytes held in memory now, including the write in flight. */
  readonly bufferedBytes: number;
  readonly rotations: number;
  /** Times the pipes were paused because the disk was slower than the app. */
  readonly pauses: number;
}

export interface VassalLog {
  readonly path: string;
  /**
   * Reads `stream` (a raw pipe fd, which the log then owns, or a Readable) until it ends;
   * `label` (`shop/0`) names the instance in timestamp prefixes.
   */
  attach(stream: Readable | number, label: string, source?: OutputSource, prefixed?: boolean): void;
  /** Reopens the file by path (SIGUSR1, after an external logrotate moved it). Never rejects. */
  reopen(): Promise<void>;
  /** The last `n` lines the attached stderr streams wrote (oldest first, without `\n`). */
  recentLines(n?: number): string[];
  /** Resolves once everything received so far is written (or dropped). Never rejects. */
  flush(): Promise<void>;
  stats(): VassalLogStats;
  /**
   * Calls `listener` with every piece of output right after it reached the file (`emperor logs
   * -f`); rotations and reopens do not interrupt it. `size` is how many bytes of the current file
   * were written before the subscription, when known (the file is open): reading the file up to
   * there, in the same tick, then following, neither misses nor repeats a byte.
   */
  subscribe(listener: (chunk: Buffer) => void, onClose?: () => void): LogSubscription;
  /**
   * Applies a vassal file's new `log-max-size`, `log-backups` and `log-timestamps` to the open
   * log (a reload): from the next write on, with no line lost or split.
   */
  reconfigure(options: Pick<VassalLogOptions, 'maxSizeBytes' | 'backups' | 'timestamps'>): void;
  /**
   * Reads the attached pipes to their end (for 1 s at most), writes pending lines and output,
   * then closes the file and ends every subscription. Idempotent; never rejects.
   */
  close(): Promise<void>;
}

export interface LogSubscription {
  readonly size: number | undefined;
  unsubscribe(): void;
}

interface Attachment {
  readonly label: string;
  /** Every line starts with `label` even without timestamps (a side daemon's, told apart from the app's). */
  readonly prefixed: boolean;
  readonly source: OutputSource;
  reader?: OutputReader;
  /** Timestamps only: the start of a line whose `\n` has not arrived yet. */
  carry: Buffer[];
  carryBytes: number;
  carryTime: number;
  /** stderr only: the unfinished last line, for `recentLines`. */
  tail: string;
}

/** Where a run of verbatim output is copied; `pending` counts its queued pieces not yet written. */
interface Slab {
  readonly buf: Buffer;
  used: number;
  pending: number;
}

interface Piece {
  buf: Buffer;
  readonly slab: Slab | undefined;
}

let trimmedAt = 0;

export function openVassalLog(options: VassalLogOptions): VassalLog {
  return new VassalLogImpl(options);
}

class VassalLogImpl implements VassalLog {
  readonly path: string;
  #opts: VassalLogOptions;
  readonly #maxBuffered: number;
  readonly #pauseAt: number;
  readonly #now: () => number;
  readonly #attachments = new Set<Attachment>();
  readonly #recent: string[] = [];
  readonly #listeners = new Set<(chunk: Buffer) => void>();
  /** Told when the log closes (its vassal is gone): a follower would otherwise wait forever. */
  readonly #closeListeners = new Map<(chunk: Buffer) => void, () => void>();

  // The write queue. `#queued` counts bytes until their write has finished, so the in-flight
  // batch counts against the memory cap too.
  #queue: Piece[] = [];
  #queued = 0;
  /** The slab verbatim output is copied into now, and emptied ones kept for reuse. */
  #slab: Slab | undefined;
  #spareSlabs: Slab[] = [];
  /** The pipes are not read: the disk is behind. */
  #paused = false;
  #pauseTimer: NodeJS.Timeout | undefined;
  #pauses = 0;
  /** A pause lasted `MAX_PAUSE_MS`: read on, hold up to the cap, drop beyond, until caught up. */
  #overflow = false;
  #idleTimer: NodeJS.Timeout | undefined;
  /** close() is waiting for the last pipe to end. */
  #allEnded: (() => void) | undefined;
  /** Output arrived since the idle timer was armed. */
  #stirred = false;
  #sinceTrim = 0;
  #accepted = 0;
  #settled = 0;
  #lastByte = NL;
  #dropping = false;
  #unreported = 0;
  #dropped = 0;
  #written = 0;
  #rotations = 0;
  #failing = false;

  #fh: FileHandle | undefined;
  #size = 0;
  /** The file ends with a newline (or is empty): a rotation now splits no line. */
  #atLineStart = true;
  #running = false;
  #reopenWanted = false;
  #reopenWaiters: (() => void)[] = [];
  #flushWaiters: { target: number; resolve: () => void }[] = [];
  #closing = false;
  /** close() is reading the exited apps' pipes to their end. */
  #draining = false;
  #closed: Promise<void> | undefined;

  constructor(opts: VassalLogOptions) {
    this.path = opts.path;
    this.#opts = opts;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#pauseAt = Math.min(PAUSE_BYTES, this.#maxBuffered / 2);
    this.#now = opts.now ?? Date.now;
  }

  attach(stream: Readable | number, label: string, source: OutputSource = 'stdout', prefixed = false): void {
    const att: Attachment = { label, prefixed, source, carry: [], carryBytes: 0, carryTime: 0, tail: '' };
    // The pipe is read until it closes, after close() too (the output is then discarded), and
    // paused only while the disk is behind (bounded by MAX_PAUSE_MS).
    att.reader = readOutput(
      stream,
      (chunk) => {
        this.#onData(att, chunk);
      },
      () => {
        if (!this.#attachments.delete(att)) return;
        this.#endLine(att);
        if (att.source === 'stderr' && att.tail !== '') this.#remember(att.tail);
        if (this.#attachments.size === 0) this.#allEnded?.();
      },
    );
    // Only once reading started: a pipe that could not be read must not hold close() back.
    this.#attachments.add(att);
    if (this.#paused) att.reader.pause();
  }

  reopen(): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      this.#reopenWanted = true;
      this.#reopenWaiters.push(resolve);
      this.#kick();
    });
  }

  recentLines(n = RECENT_LINES): string[] {
    return n <= 0 ? [] : this.#recent.slice(-n);
  }

  flush(): Promise<void> {
    const target = this.#accepted;
    if (this.#settled >= target && !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      this.#flushWaiters.push({ target, resolve });
      this.#kick();
    });
  }

  stats(): VassalLogStats {
    return {
      writtenBytes: this.#written,
      droppedBytes: this.#dropped,
      bufferedBytes: this.#queued,
      rotations: this.#rotations,
      pauses: this.#pauses,
    };
  }

  subscribe(listener: (chunk: Buffer) => void, onClose?: () => void): LogSubscription {
    this.#listeners.add(listener);
    if (onClose) this.#closeListeners.set(listener, onClose);
    return {
      size: this.#fh === undefined ? undefined : this.#size,
      unsubscribe: () => {
        this.#listeners.delete(listener);
        this.#closeListeners.delete(listener);
      },
    };
  }

  reconfigure(options: Pick<VassalLogOptions, 'maxSizeBytes' | 'backups' | 'timestamps'>): void {
    if (this.#opts.timestamps && !options.timestamps) {
      // An unfinished stamped line goes out with its prefix; its end follows unstamped.
      for (const att of this.#attachments) {
        if (att.carryBytes === 0 || att.prefixed || this.#closing) continue;
        const bytes = att.carryBytes;
        const head = Buffer.concat([this.#prefix(att.carryTime, att), ...att.carry]);
        att.carry = [];
        att.carryBytes = 0;
        this.#enqueue(head, bytes, true);
      }
    }
    this.#opts = { ...this.#opts, ...options };
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    if (this.#attachments.size > 0) {
      // The apps have exited, but a pipe may still hold their last output (up to 1 MiB while
      // paused): read every pipe to its end first, for CLOSE_DRAIN_MS at most, since a
      // grandchild may keep one open.
      this.#overflow = true;
      this.#draining = true;
      this.#readAgain();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.#allEnded = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#allEnded = undefined;
      this.#draining = false;
    }
    for (const att of this.#attachments) this.#endLine(att);
    this.#closing = true;
    // Later output is discarded: nothing may hold an app back any more.
    this.#readAgain();
    // Until idle, not just until flushed: the drop report is queued after the last output.
    if (this.#running)
      await new Promise<void>((resolve) => this.#flushWaiters.push({ target: Infinity, resolve }));
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#quiet();
    const ends = [...this.#closeListeners.values()];
    this.#closeListeners.clear();
    this.#listeners.clear();
    for (const end of ends) end();
  }

  // --- input side -------------------------------------------------------------------------

  #onData(att: Attachment, chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (att.source === 'stderr') this.#scanRecent(att, chunk);
    if (this.#closing) {
      this.#drop(chunk.length); // counted in stats(): the file is closing, no report follows
      return;
    }
    if (!this.#opts.timestamps && !att.prefixed) {
      // The hot path: no per-line work, the chunk is copied into the current slab.
      this.#enqueue(chunk, chunk.length, false);
      return;
    }
    const out = this.#stamp(att, chunk);
    if (out !== undefined) this.#enqueue(out, chunk.length, true);
    if (att.carryBytes > MAX_LINE_BYTES) this.#endLine(att);
  }

  /** Prefixes every complete line of `chunk`; keeps the unfinished end for the next chunk. */
  #stamp(att: Attachment, chunk: Buffer): Buffer | undefined {
    const now = this.#now();
    let nl = chunk.indexOf(NL);
    if (nl === -1) {
      if (att.carryBytes === 0) att.carryTime = now;
      att.carry.push(Buffer.from(chunk));
      att.carryBytes += chunk.length;
      return undefined;
    }
    const prefix = this.#prefix(now, att);
    const parts: Buffer[] = [];
    if (att.carryBytes > 0) {
      parts.push(this.#prefix(att.carryTime, att), ...att.carry);
      att.carry = [];
      att.carryBytes = 0;
    } else {
      parts.push(prefix);
    }
    parts.push(chunk.subarray(0, nl + 1));
    let pos = nl + 1;
    while ((nl = chunk.indexOf(NL, pos)) !== -1) {
      parts.push(prefix, chunk.subarray(pos, nl + 1));
      pos = nl + 1;
    }
    if (pos < chunk.length) {
      // Copy the tail so the carry does not pin the whole chunk.
      att.carry.push(Buffer.from(chunk.subarray(pos)));
      att.carryBytes = chunk.length - pos;
      att.carryTime = now;
    }
    return Buffer.concat(parts);
  }

  /** Writes an unfinished line as a line of its own (stream end, close, overlong line). */
  #endLine(att: Attachment): void {
    if (att.carryBytes === 0 || this.#closing) return;
    const line = Buffer.concat([this.#prefix(att.carryTime, att), ...att.carry, Buffer.of(NL)]);
    const bytes = att.carryBytes;
    att.carry = [];
    att.carryBytes = 0;
    this.#enqueue(line, bytes, true);
  }

  #prefix(time: number, att: Attachment): Buffer {
    if (!this.#opts.timestamps) return Buffer.from(`${att.label} `);
    return Buffer.from(`${new Date(time).toISOString()} ${att.label} `);
  }

  /** Keeps the last lines of stderr; looks only at the end of big chunks. */
  #scanRecent(att: Attachment, chunk: Buffer): void {
    // Line ends, newest first: one more than kept, to know where the oldest kept line starts.
    const ends: number[] = [];
    for (let p = chunk.length - 1; p >= 0 && ends.length <= RECENT_LINES;) {
      const nl = chunk.lastIndexOf(NL, p);
      if (nl === -1) break;
      ends.push(nl);
      p = nl - 1;
    }
    if (ends.length === 0) {
      if (att.tail.length < RECENT_LINE_CHARS) att.tail += decode(chunk, 0, chunk.length);
      return;
    }
    const kept = Math.min(ends.length, RECENT_LINES);
    for (let k = kept - 1; k >= 0; k--) {
      const start = (ends[k + 1] ?? -1) + 1;
      const text = decode(chunk, start, ends[k] ?? 0);
      // The oldest line of the chunk continues what earlier chunks left unfinished.
      this.#remember(start === 0 ? att.tail + text : text);
    }
    att.tail = decode(chunk, (ends[0] ?? 0) + 1, chunk.length);
  }

  #remember(line: string): void {
    const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
    this.#recent.push(clean.length > RECENT_LINE_CHARS ? clean.slice(0, RECENT_LINE_CHARS) : clean);
    if (this.#recent.length > RECENT_LINES) this.#recent.shift();
  }

  // --- queue ------------------------------------------------------------------------------

  /**
   * Queues `buf` (from `inputBytes` of app output) or drops it when the queue is full. `owned`:
   * the log may keep `buf`; otherwise it is only valid now (a pipe's scratch buffer) and is copied.
   */
  #enqueue(buf: Buffer, inputBytes: number, owned: boolean): void {
    if (this.#dropping) {
      // Hysteresis: resume at half the cap, so one episode yields one report, not one per chunk.
      if (this.#queued > this.#maxBuffered / 2) {
        this.#drop(inputBytes);
        return;
      }
      this.#resume();
    }
    if (this.#queued + buf.length > this.#maxBuffered) {
      this.#dropping = true;
      this.#drop(inputBytes);
      return;
    }
    if (owned) this.#push(buf);
    else this.#copy(buf);
    if (!this.#paused && !this.#overflow && this.#queued >= this.#pauseAt) this.#pause();
  }

  #push(buf: Buffer, slab?: Slab): void {
    this.#queue.push({ buf, slab });
    this.#counted(buf);
  }

  #counted(buf: Buffer): void {
    this.#queued += buf.length;
    this.#accepted += buf.length;
    this.#sinceTrim += buf.length;
    this.#stirred = true;
    const last = buf[buf.length - 1];
    if (last !== undefined) this.#lastByte = last;
    this.#kick();
  }

  /** Appends a copy of `chunk` to the current slab: consecutive reads become one piece. */
  #copy(chunk: Buffer): void {
    if (!this.#running && this.#slab === undefined && chunk.length < SMALL_BYTES) {
      // A quiet vassal's line: a copy of its own, no slab held between lines.
      this.#push(Buffer.from(chunk));
      return;
    }
    let slab = this.#slab;
    if (slab === undefined || slab.buf.length - slab.used < chunk.length) {
      if (slab !== undefined && slab.pending === 0) this.#spare(slab);
      const spare = chunk.length <= SLAB_BYTES ? this.#spareSlabs.pop() : undefined;
      slab = this.#slab = spare ?? {
        buf: Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, chunk.length)),
        used: 0,
        pending: 0,
      };
    }
    const start = slab.used;
    chunk.copy(slab.buf, start);
    slab.used += chunk.length;
    const last = this.#queue[this.#queue.length - 1];
    if (last?.slab === slab && last.buf.byteOffset + last.buf.length === slab.buf.byteOffset + start) {
      // Not taken by the writer yet: the queued piece grows in place.
      last.buf = slab.buf.subarray(last.buf.byteOffset - slab.buf.byteOffset, slab.used);
      this.#counted(slab.buf.subarray(start, slab.used));
      return;
    }
    slab.pending++;
    this.#push(slab.buf.subarray(start, slab.used), slab);
  }

  /** The pieces of a finished write no longer need their slabs; an emptied full slab is kept for reuse. */
  #release(pieces: Piece[]): void {
    for (const { slab } of pieces) {
      if (slab === undefined || --slab.pending > 0) continue;
      if (slab === this.#slab) {
        slab.used = 0;
        continue;
      }
      this.#spare(slab);
    }
  }

  /** Keeps an emptied slab for the next one needed, up to SPARE_SLABS. */
  #spare(slab: Slab): void {
    slab.used = 0;
    if (this.#spareSlabs.length < SPARE_SLABS && slab.buf.length === SLAB_BYTES) this.#spareSlabs.push(slab);
  }

  // --- backpressure -----------------------------------------------------------------------

  /** The disk is behind: stop reading, so the apps wait on their pipes instead of losing output. */
  #pause(): void {
    this.#paused = true;
    this.#pauses++;
    for (const att of this.#attachments) att.reader?.pause();
    this.#pauseTimer = setTimeout(() => {
      // The disk cannot keep up: an app is never held back longer (SPEC §4).
      this.#overflow = true;
      this.#readAgain();
    }, this.#opts.maxPauseMs ?? MAX_PAUSE_MS);
    this.#pauseTimer.unref();
  }

  #readAgain(): void {
    clearTimeout(this.#pauseTimer);
    this.#pauseTimer = undefined;
    if (!this.#paused) return;
    this.#paused = false;
    for (const att of this.#attachments) att.reader?.resume();
  }

  /** After a write: read again once the backlog is down to half the pause mark. */
  #caughtUp(): void {
    if (this.#queued > this.#pauseAt / 2) return;
    // While close drains the pipes nothing may pause them again: a pause as long as the drain
    // would end it with output still in a pipe.
    if (!this.#draining) this.#overflow = false;
    this.#readAgain();
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined || this.#closing) return;
    this.#stirred = false;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      // Still busy: the end of the next write loop arms the timer again.
      if (this.#running) return;
      if (this.#stirred) this.#armIdle();
      else this.#quiet();
    }, IDLE_MS);
    this.#idleTimer.unref();
  }

  /** Quiet after output: what a burst took goes back to the kernel. */
  #quiet(): void {
    if (this.#slab?.pending === 0) this.#slab = undefined;
    this.#spareSlabs = [];
    for (const att of this.#attachments) att.reader?.relax();
    if (this.#sinceTrim < TRIM_AFTER_BYTES) return;
    this.#sinceTrim = 0;
    // glibc keeps freed read and write buffers in its heaps; once a second at most, for all logs.
    const now = Date.now();
    if (now - trimmedAt < IDLE_MS) return;
    trimmedAt = now;
    trimMemory();
  }

  #drop(bytes: number): void {
    this.#dropped += bytes;
    this.#unreported += bytes;
  }

  /** Queues the report of dropped output and accepts output again. */
  #resume(): void {
    this.#dropping = false;
    const bytes = this.#unreported;
    this.#unreported = 0;
    if (bytes === 0) return;
    const text = `[emperor] dropped ${bytes} bytes of output\n`;
    // Verbatim output may have stopped mid-line: the report still gets a line of its own.
    const lead = this.#lastByte === NL ? '' : '\n';
    const prefix = this.#opts.timestamps ? `${new Date(this.#now()).toISOString()} ` : '';
    this.#push(Buffer.from(lead + prefix + text));
    this.#opts.logger?.warn({ event: 'vassal-log-dropped', path: this.path, bytes }, 'vassal output dropped');
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run();
  }

  /** The only writer of the file: writes, rotations and reopens happen here, one at a time. */
  async #run(): Promise<void> {
    for (;;) {
      if (this.#reopenWanted) {
        this.#reopenWanted = false;
        const waiters = this.#reopenWaiters;
        this.#reopenWaiters = [];
        const fh = this.#fh;
        this.#fh = undefined;
        await fh?.close().catch(() => undefined);
        // Open at once so the new file exists right after SIGUSR1, as logrotate expects.
        await this.#ensureOpen().catch((err: unknown) => {
          this.#failed(err);
        });
        for (const w of waiters) w();
        continue;
      }
      if (this.#queue.length === 0) {
        if (this.#unreported > 0) {
          this.#resume();
          continue;
        }
        break;
      }
      const pieces = this.#takeBatch();
      const batch = pieces.map((p) => p.buf);
      const bytes = byteLength(batch);
      try {
        await this.#opts.beforeWrite?.();
        await this.#ensureOpen();
        await this.#writeRotating(batch);
        this.#written += bytes;
        this.#failing = false;
      } catch (err) {
        // A failed batch is dropped and reported like a full queue; the file is reopened next time.
        this.#drop(bytes);
        this.#failed(err);
        if (!this.#closing) await delay(RETRY_MS);
      }
      this.#queued -= bytes;
      this.#settled += bytes;
      this.#release(pieces);
      this.#caughtUp();
      this.#wakeFlushers();
    }
    this.#running = false;
    this.#wakeFlushers();
    this.#armIdle();
  }

  #failed(err: unknown): void {
    const fh = this.#fh;
    this.#fh = undefined;
    void fh?.close().catch(() => undefined);
    if (this.#failing) return;
    this.#failing = true;
    this.#opts.logger?.error({ event: 'vassal-log-error', path: this.path, err }, 'cannot write vassal log');
  }

  #wakeFlushers(): void {
    if (this.#flushWaiters.length === 0) return;
    const idle = !this.#running;
    this.#flushWaiters = this.#flushWaiters.filter((w) => {
      if (this.#settled < w.target && !idle) return true;
      w.resolve();
      return false;
    });
  }

  #takeBatch(): Piece[] {
    let n = 0;
    let bytes = 0;
    while (n < this.#queue.length && n < BATCH_BUFFERS && bytes < BATCH_BYTES) {
      bytes += this.#queue[n]?.buf.length ?? 0;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  async #ensureOpen(): Promise<FileHandle> {
    if (this.#fh !== undefined) return this.#fh;
    await mkdir(dirname(this.path), { recursive: true });
    // O_APPEND: a logrotate `copytruncate` or a second writer never makes us write into a hole.
    const fh = await open(this.path, 'a', 0o640);
    this.#size = (await fh.stat()).size;
    this.#atLineStart = true;
    this.#fh = fh;
    return fh;
  }

  /** Writes `batch`, rotating first whenever the file would grow past `maxSizeBytes`. */
  async #writeRotating(batch: Buffer[]): Promise<void> {
    const max = this.#opts.maxSizeBytes;
    let bufs = batch;
    let total = byteLength(bufs);
    while (total > 0) {
      if (max <= 0 || this.#size + total <= max) {
        await this.#writeAll(bufs, total);
        return;
      }
      // Cut after the last newline that still fits, so no line is split across two files.
      const room = Math.max(0, max - this.#size);
      let cut = lastLineEnd(bufs, room);
      if (cut === 0 && !this.#atLineStart) {
        // Verbatim output can end a batch mid-line: finish that line in this file, past the
        // limit by at most MAX_LINE_BYTES, rather than split it across two files.
        cut = firstLineEnd(bufs, MAX_LINE_BYTES);
      }
      if (cut === 0) {
        if (this.#size > 0) {
          await this.#rotate();
          continue;
        }
        // An empty file and no line end within `max`: the line is longer than a file can be.
        cut = room;
      }
      const [head, tail] = splitAt(bufs, cut);
      await this.#writeAll(head, cut);
      await this.#rotate();
      bufs = tail;
      total -= cut;
    }
  }

  async #writeAll(bufs: Buffer[], total: number): Promise<void> {
    const fh = await this.#ensureOpen();
    let rest = bufs;
    let left = total;
    while (left > 0) {
      const { bytesWritten } = await fh.writev(rest);
      this.#size += bytesWritten;
      if (this.#listeners.size > 0 && bytesWritten > 0) this.#publish(rest, bytesWritten);
      if (bytesWritten > 0) this.#atLineStart = lastByte(rest, bytesWritten) === NL;
      left -= bytesWritten;
      if (left > 0) rest = splitAt(rest, bytesWritten)[1];
    }
  }

  /** Hands the first `bytes` of `bufs` (just written) to the followers; one's failure never stops the writer. */
  #publish(bufs: Buffer[], bytes: number): void {
    const chunk = Buffer.concat(splitAt(bufs, bytes)[0]);
    for (const listener of this.#listeners) {
      try {
        listener(chunk);
      } catch (err) {
        this.#opts.logger?.warn(
          { event: 'vassal-log-follower-error', path: this.path, err },
          'log follower failed',
        );
      }
    }
  }

  async #rotate(): Promise<void> {
    const fh = await this.#ensureOpen();
    const { backups } = this.#opts;
    this.#rotations++;
    if (backups <= 0) {
      // With O_APPEND the next write lands at offset 0 again.
      await fh.truncate(0);
      this.#size = 0;
      this.#atLineStart = true;
      return;
    }
    this.#fh = undefined;
    await fh.close();
    for (let i = backups - 1; i >= 1; i--) await renameIfExists(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    await renameIfExists(this.path, `${this.path}.1`);
    await this.#ensureOpen();
    this.#opts.logger?.debug({ event: 'vassal-log-rotated', path: this.path }, 'vassal log rotated');
  }
}

function decode(buf: Buffer, start: number, end: number): string {
  // Only the head of a long line is kept, so only the head is decoded.
  return buf.toString('utf8', start, Math.min(end, start + RECENT_LINE_CHARS * 4));
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
