// Log throughput (SPEC §7.6): a vassal writing to stdout as fast as it can, BYTES in total (1 GiB),
// through the emperor into its log file, against the same program writing the same bytes to a file
// directly, on the same disk, alternated in one run.
//   throughput: BYTES / (time the file reached BYTES - time of the program's first write); the
//               program writes its start time to a mark file, so Node's own start-up is left out,
//               and the file size is polled (every POLL_MS) the same way in both cases;
//   dropped   : the bytes the emperor reported as dropped (`vassal-log-dropped`), and the log is
//               compared byte for byte with what the program wrote;
//   CPU       : the emperor's utime+stime over the burst (/proc/PID/stat), per GiB;
//   RSS       : the emperor's VmRSS before the first burst (after SETTLE_S idle) and AFTER_S after
//               the last one; VmHWM is the peak.
// One direct run before the measured ones warms the page cache's memory (see below). Before
// each run the file system is synced (`sync -f`): the previous run's file is deleted by
// then, and on this disk (ext4 mounted with `discard`) a deletion's discards and the previous
// run's dirty pages otherwise slow whichever run comes next, by 3-5x, whatever it is.
// Every process gets the same environment without NODE_EXTRA_CA_CERTS (cleanEnv: it slows each
// Node start by ~35 ms here).
// Usage: node bench/log-throughput.mjs [BYTES=1073741824]   (BENCH_REPS=3, SETTLE_S=5, AFTER_S=10)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLK_TCK,
  ROOT,
  cleanEnv,
  cpuTicks,
  deadline,
  fmt,
  median,
  nowMs,
  printTable,
  result,
  rssKb,
  shell,
  sleep,
  startEmperor,
  track,
  untrack,
  verdict,
  vassalIni,
} from './lib.mjs';
import { firstDifference } from './fixtures/log-burst.mjs';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const BYTES = Number(process.argv[2] ?? GiB);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const SETTLE_S = Number(process.env.SETTLE_S ?? 5);
const AFTER_S = Number(process.env.AFTER_S ?? 10);
const POLL_MS = 2;
const WRITER = join(ROOT, 'bench', 'fixtures', 'log-burst.mjs');
deadline(115_000, 'log-throughput');

/**
 * Resolves with the time `path` first has `bytes` bytes, or, once `ended()` says nothing more is
 * coming (output was dropped), the time its size stopped changing.
 */
async function sizeReached(path, bytes, ended = () => false, limitMs = 60_000) {
  const limit = nowMs() + limitMs;
  let last = -1;
  let lastAt = 0;
  for (;;) {
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      // not created yet
    }
    if (size >= bytes) return nowMs();
    if (size !== last) [last, lastAt] = [size, nowMs()];
    else if (ended() && nowMs() - lastAt > 1000) return lastAt;
    if (nowMs() > limit) throw new Error(`${path}: ${size} of ${bytes} bytes after ${limitMs / 1000} s`);
    await sleep(POLL_MS);
  }
}

const startMark = (mark) => Number(readFileSync(mark, 'utf8'));

/** Outside the measured window: write back and discard what the previous run left. */
function settleDisk(dir) {
  execFileSync('sync', ['-f', dir]);
}

/**
 * The same program writing to a file directly, or (`viaCat`) to its stdout piped into `cat > FILE`:
 * what any supervisor that captures stdout through a pipe costs at the least, with no supervision.
 */
async function direct(dir, rep, viaCat = false) {
  settleDisk(dir);
  const kind = viaCat ? 'cat' : 'direct';
  const file = join(dir, `${kind}-${rep}.out`);
  const mark = join(dir, `${kind}-${rep}.mark`);
  const child = viaCat
    ? spawn(
        '/bin/sh',
        ['-c', `"$0" "$1" "$2" - "$3" | cat > "$4"`, process.execPath, WRITER, String(BYTES), mark, file],
        {
          env: cleanEnv(),
          stdio: 'inherit',
        },
      )
    : spawn(process.execPath, [WRITER, String(BYTES), file, mark], {
        env: cleanEnv(),
        stdio: 'inherit',
      });
  track(child.pid);
  let exit;
  child.once('exit', (code) => {
    untrack(child.pid);
    exit = code;
  });
  const done = await sizeReached(file, BYTES, () => exit !== undefined);
  if (exit !== undefined && exit !== 0) throw new Error(`the writer exited with ${exit}`);
  const seconds = (done - startMark(mark)) / 1000;
  while (exit === undefined) await sleep(5);
  rmSync(file);
  return { rate: BYTES / seconds };
}

async function viaEmperor(emperor, rep, verify) {
  const name = `burst${rep}`;
  const log = join(emperor.logDir, `${name}.log`);
  const mark = join(emperor.dir, `${name}.mark`);
  const from = emperor.lines.length;
  settleDisk(emperor.dir);
  const ticks0 = cpuTicks(emperor.pid);
  writeFileSync(
    join(emperor.vassals, `${name}.ini`),
    vassalIni(`${process.execPath} ${WRITER} ${BYTES} - ${mark}`, 'restart = no\nlog-max-size = 0\n'),
  );
  const dropped = () =>
    emperor.lines
      .slice(from)
      .filter((l) => l.event === 'vassal-log-dropped' && l.path === log)
      .reduce((n, l) => n + l.bytes, 0);
  const stopped = () => emperor.lines.slice(from).some((l) => l.event === 'stopped' && l.vassal === name);
  const done = await sizeReached(log, BYTES, stopped);
  const ticks = cpuTicks(emperor.pid) - ticks0;
  const seconds = (done - startMark(mark)) / 1000;
  await emperor.waitLine((l) => l.event === 'stopped' && l.vassal === name, `${name} stopped`, from);
  const wrong = verify ? firstDifference(log, BYTES) : -1;
  unlinkSync(join(emperor.vassals, `${name}.ini`));
  await emperor.waitLine((l) => l.event === 'removed' && l.vassal === name, `${name} removed`, from);
  if (existsSync(log)) unlinkSync(log);
  return { rate: BYTES / seconds, cpuS: ticks / CLK_TCK, dropped: dropped(), wrong };
}

const loadBefore = shell('cut -d" " -f1-3 /proc/loadavg');
const emperor = await startEmperor();
await sleep(SETTLE_S * 1000);
const baseKb = rssKb(emperor.pid);
// Not measured: the first BYTES of page cache on this virtual machine cost 5-10x more than memory
// the kernel has used and freed before, and would burden whichever run came first.
await direct(emperor.dir, 'warm-up');
const direct_ = [];
const cat = [];
const via = [];
for (let rep = 0; rep < REPS; rep++) {
  direct_.push(await direct(emperor.dir, rep));
  cat.push(await direct(emperor.dir, rep, true));
  via.push(await viaEmperor(emperor, rep, rep === REPS - 1));
}
const lastAt = nowMs();
const peakKb = rssKb(emperor.pid, 'VmHWM');
await sleep(Math.max(0, lastAt + AFTER_S * 1000 - nowMs()));
const afterKb = rssKb(emperor.pid);
await emperor.stop();

const ratios = via.map((v, i) => v.rate / direct_[i].rate);
const ratio = median(ratios);
const catRatios = via.map((v, i) => v.rate / cat[i].rate);
const dropped = via.reduce((n, v) => n + v.dropped, 0);
const wrong = via.at(-1).wrong;
const cpuPerGiB = median(via.map((v) => v.cpuS / (BYTES / GiB)));
const grewMiB = (afterKb - baseKb) / 1024;
const rate = (v) => fmt(v.rate / MiB, 0);
printTable(
  `Log throughput: ${fmt(BYTES / MiB, 0)} MiB to stdout, ${REPS} alternated runs`,
  [
    'run',
    'direct to a file, MiB/s',
    'piped into cat, MiB/s',
    'through the emperor, MiB/s',
    'ratio to direct',
    'ratio to cat',
    'emperor CPU, s/GiB',
    'dropped bytes',
  ],
  via.map((v, i) => [
    i + 1,
    rate(direct_[i]),
    rate(cat[i]),
    rate(v),
    fmt(ratios[i], 2),
    fmt(catRatios[i], 2),
    fmt(v.cpuS / (BYTES / GiB), 2),
    v.dropped,
  ]),
);
printTable(
  'Emperor memory',
  ['before the first burst', 'peak (VmHWM)', `${AFTER_S} s after the last burst`, 'difference'],
  [
    [
      `${fmt(baseKb / 1024)} MiB`,
      `${fmt(peakKb / 1024)} MiB`,
      `${fmt(afterKb / 1024)} MiB`,
      `${fmt(grewMiB)} MiB`,
    ],
  ],
);
console.log(
  `machine: ${shell('nproc')} cores, ${shell('uname -sr')}, node ${process.version}; ${shell('date -u +%FT%TZ')}; load average before ${loadBefore}, after ${shell('cut -d" " -f1-3 /proc/loadavg')}`,
);
console.log(`goal ratio >= 0.8: ${verdict(ratio >= 0.8)} (median ${fmt(ratio, 2)})`);
console.log(
  `for scale, through the emperor / piped into cat (the least a pipe costs): median ${fmt(median(catRatios), 2)}`,
);
console.log(
  `goal 0 bytes dropped, log byte-exact: ${verdict(dropped === 0 && wrong === -1)} (dropped ${dropped}${wrong === -1 ? '' : `, first difference at byte ${wrong}`})`,
);
console.log(
  `goal RSS within 10 MiB of its baseline ${AFTER_S} s after: ${verdict(grewMiB <= 10)} (${fmt(grewMiB)} MiB)`,
);
console.log(`emperor CPU: ${fmt(cpuPerGiB, 2)} s per GiB (median)`);
result('log-rate', 'emperor', median(via.map((v) => v.rate / MiB)), { cpuPerGiB, dropped });
result('log-rate', 'direct', median(direct_.map((v) => v.rate / MiB)));
result('log-rate', 'cat', median(cat.map((v) => v.rate / MiB)));
result('log-cpu', 'emperor', cpuPerGiB);
result('log-dropped', 'emperor', dropped, { wrong });
result('log-rss-growth', 'emperor', grewMiB);
