// Line arithmetic over a batch of buffers, for the vassal log's rotation: where the last whole
// line ends before a size limit, and how to cut a batch there without copying.
const NL = 0x0a;

export function byteLength(bufs: Buffer[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** Number of bytes of `bufs` up to and including the last `\n` within the first `limit` bytes. */
export function lastLineEnd(bufs: Buffer[], limit: number): number {
  let offset = 0;
  const starts: number[] = [];
  for (const b of bufs) {
    if (offset >= limit) break;
    starts.push(offset);
    offset += b.length;
  }
  for (let i = starts.length - 1; i >= 0; i--) {
    const b = bufs[i];
    const start = starts[i] ?? 0;
    if (b === undefined) continue;
    const from = Math.min(b.length, limit - start) - 1;
    // A negative offset would count from the end of the buffer.
    const nl = from >= 0 ? b.lastIndexOf(NL, from) : -1;
    if (nl !== -1) return start + nl + 1;
  }
  return 0;
}

/** Number of bytes of `bufs` up to and including the first `\n` within `limit` bytes, or 0. */
export function firstLineEnd(bufs: Buffer[], limit: number): number {
  let offset = 0;
  for (const b of bufs) {
    if (offset >= limit) break;
    const nl = b.subarray(0, limit - offset).indexOf(NL);
    if (nl !== -1) return offset + nl + 1;
    offset += b.length;
  }
  return 0;
}

/** The byte at offset `end - 1` of `bufs`. */
export function lastByte(bufs: Buffer[], end: number): number | undefined {
  let offset = 0;
  for (const b of bufs) {
    if (end <= offset + b.length) return b[end - offset - 1];
    offset += b.length;
  }
  return undefined;
}

export function splitAt(bufs: Buffer[], at: number): [Buffer[], Buffer[]] {
  const head: Buffer[] = [];
  let left = at;
  let i = 0;
  for (; i < bufs.length && left > 0; i++) {
    const b = bufs[i];
    if (b === undefined) break;
    if (b.length <= left) {
      head.push(b);
      left -= b.length;
    } else {
      head.push(b.subarray(0, left));
      return [head, [b.subarray(left), ...bufs.slice(i + 1)]];
    }
  }
  return [head, bufs.slice(i)];
}
