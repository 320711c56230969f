// The file-level half of reading a vassal: the bytes must be a small UTF-8 text file.
// The only I/O of the package is here.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { IssueList } from './issue.js';
import { parseVassal, type ParseResult } from './parse.js';
import type { ParseOptions } from './types.js';

export const MAX_FILE_BYTES = 1024 * 1024;

export type ReadVassalResult = ParseResult & {
  /** The bytes read, for the daemon's content hash; undefined when the file could not be read. */
  readonly bytes: Uint8Array | undefined;
};

function failure(
  file: string,
  code: Parameters<IssueList['error']>[0],
  message: string,
  line?: number,
): ParseResult {
  const issues = new IssueList(file);
  issues.error(code, line, undefined, message);
  return { ok: false, errors: issues.errors, warnings: [] };
}

/**
 * `fileSize` is the size the caller's stat saw: a reader stops at MAX_FILE_BYTES + 1, so the
 * bytes alone cannot say how big a file over the limit is.
 */
export function parseVassalBytes(bytes: Uint8Array, options: ParseOptions, fileSize?: number): ParseResult {
  if (bytes.length > MAX_FILE_BYTES || (fileSize ?? 0) > MAX_FILE_BYTES) {
    return failure(options.file, 'EMP_CONFIG_FILE_TOO_BIG', tooBig(Math.max(bytes.length, fileSize ?? 0)));
  }
  if (bytes.includes(0))
    return failure(
      options.file,
      'EMP_CONFIG_BINARY',
      'the file contains NUL bytes: it is binary, not a vassal file',
    );
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    const line = firstBadLine(body);
    return failure(options.file, 'EMP_CONFIG_ENCODING', 'invalid UTF-8: save the file as UTF-8', line);
  }
  return parseVassal(text, options);
}

function tooBig(size: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = size / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const human = `${v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[u] ?? ''}`;
  return `the file is ${human} (${size} bytes); a vassal file is at most 1 MiB (${MAX_FILE_BYTES} bytes)`;
}

/** Line of the first invalid UTF-8 sequence, so the user need not bisect the file. */
function firstBadLine(bytes: Uint8Array): number | undefined {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
  }
  return undefined;
}

export async function readVassalFile(
  path: string,
  options: Omit<ParseOptions, 'file'>,
): Promise<ReadVassalResult> {
  const file = resolve(path);
  const parseOptions: ParseOptions = { ...options, file };
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO dropped in the directory must not hang the reader.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { ...openFailure(file, err), bytes: undefined };
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory())
      return {
        ...failure(file, 'EMP_CONFIG_NOT_A_FILE', 'is a directory, not a vassal file'),
        bytes: undefined,
      };
    if (!st.isFile())
      return {
        ...failure(file, 'EMP_CONFIG_NOT_A_FILE', 'is not a regular file (a FIFO, socket or device)'),
        bytes: undefined,
      };
    if (st.size > MAX_FILE_BYTES)
      return { ...failure(file, 'EMP_CONFIG_FILE_TOO_BIG', tooBig(st.size)), bytes: undefined };
    // Read one byte more than allowed, so a file that grew since fstat is still caught.
    const buf = new Uint8Array(MAX_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0 || length + bytesRead >= buf.length) {
        length += bytesRead;
        break;
      }
      length += bytesRead;
    }
    const bytes = buf.slice(0, length);
    return { ...parseVassalBytes(bytes, parseOptions, st.size), bytes };
  } catch (err) {
    return {
      ...failure(file, 'EMP_CONFIG_FILE_UNREADABLE', `cannot read the file: ${errorText(err)}`),
      bytes: undefined,
    };
  } finally {
    await handle.close();
  }
}

function openFailure(file: string, err: unknown): ParseResult {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return failure(file, 'EMP_CONFIG_FILE_NOT_FOUND', 'no such file');
  if (code === 'EACCES' || code === 'EPERM')
    return failure(
      file,
      'EMP_CONFIG_FILE_UNREADABLE',
      'permission denied: the emperor cannot read this file',
    );
  return failure(file, 'EMP_CONFIG_FILE_UNREADABLE', `cannot open the file: ${errorText(err)}`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
