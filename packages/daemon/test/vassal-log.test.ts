import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { readFile, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeRawFd, openRawPipe } from '@emperor/native';
import { MAX_LINE_BYTES, openVassalLog, type VassalLog } from '../src/os/vassal-log.js';
import { exited, Groups, tempDir, waitFor } from './fixtures/os-helpers.js';

const MiB = 1024 * 1024;
const groups = new Groups();
let dir: string;
let removeDir: () => Promise<void>;
const logs: VassalLog[] = [];

before(async () => {
  ({ path: dir, remove: removeDir } = await tempDir('emp-log-'));
});
after(async () => {
  groups.killAll();
  await Promise.all(logs.map((l) => l.close()));
  await removeDir();
});

function open(options: Partial<Parameters<typeof openVassalLog>[0]> & { path: string }): VassalLog {
  const log = openVassalLog({ maxSizeBytes: 0, backups: 0, timestamps: false, ...options });
  logs.push(log);
  return log;
}

/** Spawns `sh -c script` in its own group with its stdout and stderr attached to the log. */
function produce(log: VassalLog, script: string, label = 'app/0') {
  const child = groups.spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.ok(child.stdout && child.stderr);
  log.attach(child.stdout, label, 'stdout');
  log.attach(child.stderr, label, 'stderr');
  return child;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The files of a rotated log, oldest first. */
async function rotatedFiles(path: string): Promise<string[]> {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const names = (await readdir(join(path, '..'))).filter((n) => n === base || n.startsWith(`${base}.`));
  const index = (n: string): number => (n === base ? 0 : Number(n.slice(base.length + 1)));
  return names.sort((a, b) => index(b) - index(a)).map((n) => join(path, '..', n));
}

function seq(n: number): string {
  let s = '';
  for (let i = 1; i <= n; i++) s += `${i}\n`;
  return s;
}

void describe('vassal log: throughput and memory cap', () => {
  void it('drains a fast writer to disk without blocking it', async (t) => {
    const path = join(dir, 'fast', 'fast.log');
    const log = open({ path });
    const bytes = 128 * MiB;
    const started = process.hrtime.bigint();
    const child = produce(log, `head -c ${bytes} /dev/zero`);
    const cpuBefore = process.cpuUsage();
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    const childDone = process.hrtime.bigint();
    await log.close();
    const done = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpuBefore);
    const { size } = await stat(path);
    const { droppedBytes } = log.stats();
    // Every byte is in the file or reported as dropped (none expected on a page-cache disk).
    assert.equal(
      size + droppedBytes - (droppedBytes > 0 ? markerBytes(await readFile(path, 'latin1')) : 0),
      bytes,
    );
    const seconds = Number(done - started) / 1e9;
    t.diagnostic(
      `${(bytes / MiB / seconds).toFixed(0)} MiB/s to disk; child done after ` +
        `${(Number(childDone - started) / 1e6).toFixed(0)} ms; emperor CPU ` +
        `${((cpu.user + cpu.system) / 1e3).toFixed(0)} ms; dropped ${droppedBytes}`,
    );
  });

  void it('slows a writer to a slow disk that keeps up instead of dropping its output', async () => {
    const path = join(dir, 'slow', 'slow.log');
    // A disk doing one write (at most 2 MiB) per 20 ms: far slower than the pipe, never stuck.
    // No 1 s limit on a pause here: at load 10 one could last that long, and this is about a disk
    // that keeps up, not about one that stalls (the next tests).
    const log = open({ path, maxBufferedBytes: 4 * MiB, maxPauseMs: 60_000, beforeWrite: () => sleep(20) });
    const bytes = 48 * MiB;
    const child = produce(log, `head -c ${bytes} /dev/zero`);
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    await log.close();
    const { droppedBytes, writtenBytes, pauses } = log.stats();
    assert.equal(droppedBytes, 0, 'nothing dropped');
    assert.equal(writtenBytes, bytes);
    assert.equal((await stat(path)).size, bytes);
    assert.ok(pauses > 0, 'the writer was held back by pausing its pipe');
  });

  void it('reads a raw pipe fd into the file byte for byte', async () => {
    const path = join(dir, 'raw', 'raw.log');
    const log = open({ path });
    const { readFd, writeFd } = openRawPipe();
    // seq's output is known in advance and has a different line at every offset.
    const child = groups.spawn('seq', ['1', '3000000'], { stdio: ['ignore', writeFd, 'ignore'] });
    closeRawFd(writeFd);
    log.attach(readFd, 'seq/0');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    const expected = spawnSync('seq', ['1', '3000000'], { maxBuffer: 64 * MiB }).stdout;
    await waitFor(async () => (await stat(path).catch(() => undefined))?.size === expected.length, {
      what: 'the whole output in the log',
    });
    await log.close();
    assert.ok((await readFile(path)).equals(expected), 'the log is what seq wrote');
  });

  void it('holds at most maxBufferedBytes while the disk stalls, then reports the drop once', async () => {
    const path = join(dir, 'stall.log');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cap = 1 * MiB;
    const log = open({ path, maxBufferedBytes: cap, beforeWrite: () => gate });
    const bytes = 16 * MiB;
    const child = produce(log, `head -c ${bytes} /dev/zero; echo; echo done`);
    // The app finishes while nothing at all reaches the disk: held back for MAX_PAUSE_MS at most.
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    await waitFor(() => log.stats().droppedBytes > 0, { what: 'dropped output' });
    assert.ok(log.stats().bufferedBytes <= cap, `buffered ${log.stats().bufferedBytes}`);
    release();
    await log.close();
    const text = await readFile(path, 'latin1');
    const markers = text.match(/\[emperor\] dropped (\d+) bytes of output\n/g) ?? [];
    assert.equal(markers.length, 1, 'one report per episode');
    const { droppedBytes } = log.stats();
    assert.ok(
      text.includes(`\n[emperor] dropped ${droppedBytes} bytes of output\n`),
      'report on its own line',
    );
    // Output bytes: what was kept plus what was reported equals what the app wrote.
    assert.equal(text.length - markerBytes(text) + droppedBytes, bytes + '\ndone\n'.length);
  });

  void it('drops and reports for real when the file itself blocks (a FIFO nobody reads yet)', async () => {
    const path = join(dir, 'fifo.log');
    assert.equal(spawnSync('mkfifo', [path]).status, 0);
    // Our read end: opened non-blocking so the open does not wait for a writer.
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const cap = 512 * 1024;
      const log = open({ path, maxBufferedBytes: cap });
      const bytes = 8 * MiB;
      const child = produce(log, `head -c ${bytes} /dev/zero`);
      assert.deepEqual(await exited(child), { code: 0, signal: null });
      await waitFor(() => log.stats().droppedBytes > 0, { what: 'dropped output' });
      assert.ok(log.stats().bufferedBytes <= cap);

      let closed = false;
      const closing = log.close().then(() => (closed = true));
      const buf = Buffer.alloc(MiB);
      const chunks: Buffer[] = [];
      await waitFor(
        () => {
          for (;;) {
            try {
              const n = readSync(reader, buf, 0, buf.length, null);
              if (n === 0) return closed;
              chunks.push(Buffer.from(buf.subarray(0, n)));
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return closed;
              throw err;
            }
          }
        },
        { what: 'the log drained into the FIFO', timeout: 5000 },
      );
      await closing;
      const text = Buffer.concat(chunks).toString('latin1');
      const { droppedBytes } = log.stats();
      assert.ok(text.endsWith(`[emperor] dropped ${droppedBytes} bytes of output\n`));
      assert.equal(text.length - markerBytes(text) + droppedBytes, bytes);
    } finally {
      closeSync(reader);
    }
  });
});

/**
 * Bytes of the `[emperor] dropped` reports in verbatim output that has no line end of its own
 * before a report (zeros here): such a report starts with the `\n` that puts it on its own line.
 */
function markerBytes(text: string): number {
  const needle = '\n[emperor] dropped ';
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + 1)) {
    n += text.indexOf('\n', i + 1) + 1 - i;
  }
  return n;
}

void describe('vassal log: rotation', () => {
  void it('keeps every byte and every line whole across rotations', async () => {
    const path = join(dir, 'rot', 'rot.log');
    const max = 64 * 1024;
    const log = open({ path, maxSizeBytes: max, backups: 50 });
    const child = produce(log, 'seq 1 100000');
    await exited(child);
    await log.close();
    const files = await rotatedFiles(path);
    assert.ok(files.length >= 9, `files: ${files.length}`);
    const texts = await Promise.all(files.map((f) => readFile(f, 'latin1')));
    for (const [i, text] of texts.entries()) {
      // Verbatim output may end a read mid-line; that line is finished before rotating.
      assert.ok(text.length <= max + '100000\n'.length, `${files[i]} has ${text.length} bytes`);
      assert.ok(text.endsWith('\n'), `${files[i]} ends mid-line`);
    }
    assert.equal(texts.join(''), seq(100000));
    assert.equal(log.stats().rotations, files.length - 1);
  });

  void it('keeps lines whole with timestamps', async () => {
    const path = join(dir, 'rot-ts', 'rot.log');
    const max = 32 * 1024;
    const log = open({ path, maxSizeBytes: max, backups: 50, timestamps: true });
    const child = produce(log, 'seq 1 20000', 'shop/3');
    await exited(child);
    await log.close();
    const files = await rotatedFiles(path);
    assert.ok(files.length > 5);
    let all = '';
    for (const f of files) {
      const text = await readFile(f, 'latin1');
      assert.ok(text.length <= max && text.endsWith('\n'));
      all += text;
    }
    const lines = all.split('\n').slice(0, -1);
    for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z shop\/3 \d+$/);
    assert.equal(lines.map((l) => l.slice(l.lastIndexOf(' ') + 1) + '\n').join(''), seq(20000));
  });

  void it('finishes a verbatim line that a read cut in two before rotating', async () => {
    const path = join(dir, 'finish.log');
    const log = open({ path, maxSizeBytes: 10, backups: 1 });
    const input = new PassThrough();
    log.attach(input, 'x/0');
    input.write('aaaaaaaa');
    await log.flush();
    input.end('aa\nbbbb\n');
    await waitFor(() => log.stats().writtenBytes === 16, { what: 'all bytes written' });
    await log.close();
    assert.equal(await readFile(`${path}.1`, 'utf8'), 'aaaaaaaaaa\n');
    assert.equal(await readFile(path, 'utf8'), 'bbbb\n');
  });

  void it('splits a line longer than a whole file without losing a byte', async () => {
    const path = join(dir, 'long.log');
    const log = open({ path, maxSizeBytes: 10_000, backups: 10 });
    const input = new PassThrough();
    log.attach(input, 'x/0');
    const data = Buffer.alloc(35_000, 'a');
    input.end(data);
    await waitFor(() => log.stats().writtenBytes === data.length, { what: 'all bytes written' });
    await log.close();
    const sizes = await Promise.all((await rotatedFiles(path)).map(async (f) => (await stat(f)).size));
    assert.deepEqual(sizes, [10_000, 10_000, 10_000, 5_000]);
  });

  void it('truncates in place with backups = 0', async () => {
    const path = join(dir, 'trunc.log');
    const log = open({ path, maxSizeBytes: 1000, backups: 0 });
    const input = new PassThrough();
    log.attach(input, 'x/0');
    input.end(seq(1000));
    await waitFor(() => log.stats().writtenBytes === seq(1000).length, { what: 'all bytes written' });
    await log.close();
    assert.deepEqual(await rotatedFiles(path), [path]);
    const text = await readFile(path, 'latin1');
    assert.ok(text.length <= 1000 && text.endsWith('1000\n'));
    assert.ok(seq(1000).endsWith(text));
  });
});

void describe('vassal log: files and lines', () => {
  void it('reopens by path after an external mv (SIGUSR1 after logrotate)', async () => {
    const path = join(dir, 'reopen', 'app.log');
    const log = open({ path });
    const input = new PassThrough();
    log.attach(input, 'x/0');
    input.write('one\n');
    await log.flush();
    await rename(path, `${path}.old`);
    input.write('two\n');
    await log.flush();
    await log.reopen();
    // The new file exists at once, before any output, as logrotate's postrotate expects.
    assert.equal((await stat(path)).size, 0);
    input.write('three\n');
    await log.flush();
    assert.equal(await readFile(`${path}.old`, 'utf8'), 'one\ntwo\n');
    assert.equal(await readFile(path, 'utf8'), 'three\n');
  });

  void it('appends to an existing file and counts it toward the size limit', async () => {
    const path = join(dir, 'existing.log');
    const first = open({ path, maxSizeBytes: 10, backups: 1 });
    const a = new PassThrough();
    first.attach(a, 'x/0');
    a.end('12345678\n');
    await waitFor(() => first.stats().writtenBytes === 9, { what: 'first write' });
    await first.close();
    const second = open({ path, maxSizeBytes: 10, backups: 1 });
    const b = new PassThrough();
    second.attach(b, 'x/0');
    b.end('abc\n');
    await waitFor(() => second.stats().writtenBytes === 4, { what: 'second write' });
    await second.close();
    assert.equal(await readFile(`${path}.1`, 'utf8'), '12345678\n');
    assert.equal(await readFile(path, 'utf8'), 'abc\n');
  });

  void it('prefixes whole lines with time and instance, carrying partial lines per stream', async () => {
    const path = join(dir, 'ts.log');
    let now = Date.parse('2026-11-23T14:00:00.000Z');
    const log = open({ path, timestamps: true, now: () => now });
    const a = new PassThrough();
    const b = new PassThrough();
    log.attach(a, 'shop/0');
    log.attach(b, 'shop/1');
    // A tick after each write, so each chunk is read at the time set before it.
    a.write('hel');
    await tick();
    now += 1000;
    b.write('x\ny');
    await tick();
    a.write('lo\nwor');
    await tick();
    now += 1000;
    a.write('ld\n');
    await tick();
    b.end('\n');
    a.end('unterminated');
    await waitFor(async () => (await readFile(path, 'utf8').catch(() => '')).split('\n').length === 6, {
      what: 'five lines',
    });
    assert.equal(
      await readFile(path, 'utf8'),
      [
        '2026-11-23T14:00:01.000Z shop/1 x',
        // A line carries the time its first byte arrived.
        '2026-11-23T14:00:00.000Z shop/0 hello',
        '2026-11-23T14:00:01.000Z shop/0 world',
        '2026-11-23T14:00:01.000Z shop/1 y',
        '2026-11-23T14:00:02.000Z shop/0 unterminated',
        '',
      ].join('\n'),
    );
  });

  void it('writes an overlong line in pieces, each with its prefix', async () => {
    const path = join(dir, 'ts-long.log');
    const log = open({ path, timestamps: true });
    const a = new PassThrough();
    log.attach(a, 'big/0');
    const data = 'z'.repeat(MAX_LINE_BYTES * 2 + 10);
    for (let i = 0; i < data.length; i += 1000) a.write(data.slice(i, i + 1000));
    a.end('\n');
    await new Promise((resolve) => a.once('end', resolve));
    await log.close();
    const lines = (await readFile(path, 'latin1')).split('\n').slice(0, -1);
    assert.equal(lines.length, 2);
    for (const line of lines) assert.ok(line.length < MAX_LINE_BYTES + 1100, `piece of ${line.length}`);
    assert.equal(lines.map((l) => l.slice(l.indexOf(' big/0 ') + 7)).join(''), data);
  });

  void it('reconfigure: timestamps off mid-line keep the line whole; a new size limit rotates', async () => {
    const path = join(dir, 'reconf.log');
    const log = open({ path, timestamps: true, now: () => Date.parse('2026-11-23T14:00:00.000Z') });
    const a = new PassThrough();
    log.attach(a, 'r/0');
    a.write('one\ntw');
    await tick();
    log.reconfigure({ maxSizeBytes: 70, backups: 1, timestamps: false });
    a.write('o\n');
    await tick();
    a.end('x'.repeat(40) + '\n');
    await new Promise((resolve) => a.once('end', resolve));
    await log.close();
    const rotated = await readFile(`${path}.1`, 'utf8');
    assert.equal(rotated, '2026-11-23T14:00:00.000Z r/0 one\n2026-11-23T14:00:00.000Z r/0 two\n');
    assert.equal(await readFile(path, 'utf8'), 'x'.repeat(40) + '\n');
  });

  void it('writes verbatim bytes when timestamps are off', async () => {
    const path = join(dir, 'raw.log');
    const log = open({ path });
    const a = new PassThrough();
    log.attach(a, 'x/0');
    const bytes = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0xe2, 0x82]);
    a.end(bytes);
    await waitFor(() => log.stats().writtenBytes === bytes.length, { what: 'bytes written' });
    assert.deepEqual(await readFile(path), bytes);
  });

  void it('keeps the last stderr lines, not stdout ones', async () => {
    const log = open({ path: join(dir, 'recent.log') });
    const out = new PassThrough();
    const err = new PassThrough();
    log.attach(out, 'x/0', 'stdout');
    log.attach(err, 'x/0', 'stderr');
    out.write('not this\n');
    err.write('Trace');
    err.write('back (most recent call last):\r\n');
    err.write(seq(50).replace('50\n', '50\nValueError: bad'));
    err.end();
    await new Promise((resolve) => err.once('close', resolve));
    assert.deepEqual(log.recentLines(3), ['49', '50', 'ValueError: bad']);
    assert.equal(log.recentLines().length, 20);
    const small = open({ path: join(dir, 'recent2.log') });
    const e2 = new PassThrough();
    small.attach(e2, 'y/0', 'stderr');
    e2.write('Trace');
    e2.end('back\nline two\n');
    await new Promise((resolve) => e2.once('close', resolve));
    assert.deepEqual(small.recentLines(), ['Traceback', 'line two']);
  });

  void it('close is idempotent and later output is discarded without blocking the stream', async () => {
    const path = join(dir, 'closed.log');
    const log = open({ path });
    const a = new PassThrough();
    log.attach(a, 'x/0');
    a.write('kept\n');
    await Promise.all([log.close(), log.close()]);
    a.write('x'.repeat(1024 * 1024));
    await waitFor(() => a.readableLength === 0 && a.writableLength === 0, { what: 'the stream drained' });
    await log.close();
    assert.equal(await readFile(path, 'utf8'), 'kept\n');
  });
});
