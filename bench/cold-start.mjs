// Cold start of N vassals, as a ratio to spawning the same commands directly in parallel.
//
// "Started" means, on both sides alike:
//   sleep : every one of the N processes runs /bin/sleep (its /proc/PID/exe), i.e. has been
//           forked (cloned, for the emperor) and exec'd the app;
//   node  : every one of the N apps (bench/fixtures/marker-app.mjs) has created its marker file.
// The bench process polls for that every ~1 ms for both sides.
//
// Emperor ("drop"): a running emperor, N files renamed into its directory in one loop; t0 just
// before the first rename. The files are written just before (so they wait out the ~20 ms
// write-settle of SPEC §4), and in a second run 100 ms before (what a deploy tool that renders
// its files, then moves them in, does), and a third time so into an emperor that has already
// started and removed N other vassals (its code warm, as in an emperor that has been running). Direct: a ready plain Node script (bench/direct-spawn.mjs) spawns the N
// commands in one loop with child_process.spawn; t0 just before "go" is written to its stdin.
// Emperor ("boot"): the N files are there first; t0 just before `emperor run` is spawned. Its
// ratio is to the same direct time, so it includes Node's and the emperor's own start-up.
//
// Usage: node bench/cold-start.mjs [sleep|node] [N...]  (defaults: sleep 10 100 500; node 10 100)
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  alive,
  cleanEnv,
  deadline,
  exeOf,
  fmt,
  median,
  nowMs,
  printTable,
  removeDir,
  result,
  sleep,
  startEmperor,
  tempDir,
  track,
  untrack,
  verdict,
  vassalIni,
} from './lib.mjs';

const kind = process.argv[2] ?? 'sleep';
const sizes = process.argv.slice(3).map(Number);
if (sizes.length === 0) sizes.push(...(kind === 'node' ? [10, 100] : [10, 100, 500]));
const REPS = Number(process.env.BENCH_REPS ?? 3);
// BENCH_QUICK=1 (npm run bench): only the direct spawner, the drop of fresh files and the boot.
const QUICK = process.env.BENCH_QUICK === '1';
deadline(115_000, `cold-start ${kind}`);

const SLEEP = realpathSync('/bin/sleep');
const MARKER_APP = join(ROOT, 'bench', 'fixtures', 'marker-app.mjs');

/** argv of app i; markers go to `markDir`. */
const argvOf = (i, markDir) =>
  kind === 'node' ? [process.execPath, MARKER_APP, join(markDir, `a${i}`)] : ['/bin/sleep', '1000'];

/** Resolves with nowMs() once `isStarted()` holds; polls every ~1 ms. */
async function until(isStarted, what, timeout = 60_000) {
  const limit = nowMs() + timeout;
  for (;;) {
    if (isStarted()) return nowMs();
    if (nowMs() > limit) throw new Error(`timed out: ${what}`);
    await sleep(1);
  }
}

/** Every pid in `pids()` (which may still grow to n) runs /bin/sleep. */
function allExecd(pids, n) {
  const done = new Set();
  return () => {
    const list = pids();
    if (list.length < n) return false;
    for (const pid of list) if (!done.has(pid) && exeOf(pid) === SLEEP) done.add(pid);
    return done.size >= n;
  };
}
const markersAt = (dir, n) => () => readdirSync(dir).length >= n;

async function waitGone(pids) {
  await until(() => pids.every((p) => !alive(p)), 'processes to go', 20_000);
}

async function direct(n) {
  const dir = tempDir();
  const markDir = join(dir, 'marks');
  mkdirSync(markDir);
  const commands = Array.from({ length: n }, (_, i) => argvOf(i, markDir));
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'direct-spawn.mjs'), JSON.stringify(commands)], {
    env: cleanEnv(),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  track(child.pid);
  child.stdout.setEncoding('utf8');
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  await until(() => out.startsWith('ready\n'), 'direct spawner ready', 10_000);
  let pids = [];
  const t0 = nowMs();
  child.stdin.write('go\n');
  const started =
    kind === 'node'
      ? markersAt(markDir, n)
      : allExecd(() => {
          if (pids.length === 0 && out.includes(']')) pids = JSON.parse(out.slice('ready\n'.length));
          return pids;
        }, n);
  const t1 = await until(started, `${n} direct starts`);
  if (pids.length === 0 && out.includes(']')) pids = JSON.parse(out.slice('ready\n'.length));
  child.stdin.end();
  await new Promise((r) => child.once('exit', r));
  untrack(child.pid);
  await waitGone(pids);
  removeDir(dir);
  return t1 - t0;
}

function writeFiles(dir, n, markDir, prefix = 'a') {
  for (let i = 0; i < n; i++)
    writeFileSync(join(dir, `${prefix}${i}.ini`), vassalIni(argvOf(i, markDir).join(' ')));
}

/** Starts N vassals of other names, then removes them, so that the emperor's code paths are warm. */
async function warmUp(emperor, n, markDir) {
  const from = emperor.lines.length;
  const stage = join(emperor.dir, 'warm');
  mkdirSync(stage);
  writeFiles(stage, n, markDir, 'w');
  const names = readdirSync(stage);
  for (const name of names) renameSync(join(stage, name), join(emperor.vassals, name));
  await emperor.waitLines((l) => l.event === 'running', n, `${n} warm-up vassals running`, from, 60_000);
  const gone = emperor.lines.length;
  for (const name of names) unlinkSync(join(emperor.vassals, name));
  await emperor.waitLines((l) => l.event === 'removed', n, `${n} warm-up vassals removed`, gone, 60_000);
  if (kind === 'node') {
    removeDir(markDir);
    mkdirSync(markDir);
  }
}

/**
 * `ageMs`: how long before the drop the files were written (0: just before, still "young").
 * `warm`: the emperor has first started and stopped N other vassals, as a running emperor has.
 */
async function emperorDrop(n, ageMs = 0, warm = false) {
  const emperor = await startEmperor();
  const markDir = join(emperor.dir, 'marks');
  const stage = join(emperor.dir, 'stage');
  mkdirSync(markDir);
  mkdirSync(stage);
  if (warm) await warmUp(emperor, n, markDir);
  writeFiles(stage, n, markDir);
  if (ageMs > 0) await sleep(ageMs);
  const names = readdirSync(stage);
  const from = emperor.lines.length;
  const spawnPids = () => emperor.lines.slice(from).flatMap((l) => (l.event === 'spawn' ? [l.pid] : []));
  const t0 = nowMs();
  for (const name of names) renameSync(join(stage, name), join(emperor.vassals, name));
  const t1 = await until(kind === 'node' ? markersAt(markDir, n) : allExecd(spawnPids, n), `${n} vassals`);
  const spawnAts = emperor.lines.slice(from).flatMap((l) => (l.event === 'spawn' ? [l._at] : []));
  const [firstSpawn, lastSpawn] = [Math.min(...spawnAts), Math.max(...spawnAts)];
  const pids = spawnPids();
  await emperor.stop();
  await waitGone(pids);
  return { started: t1 - t0, firstSpawnLine: firstSpawn - t0, lastSpawnLine: lastSpawn - t0 };
}

async function emperorBoot(n) {
  // startEmperor writes the files before spawning; markers need the dir's name first.
  const markDir = join(tempDir(), 'marks');
  mkdirSync(markDir);
  const files = {};
  for (let i = 0; i < n; i++) files[`a${i}.ini`] = vassalIni(argvOf(i, markDir).join(' '));
  const emperor = await startEmperor({ files, wait: false });
  const spawnPids = () => emperor.lines.flatMap((l) => (l.event === 'spawn' ? [l.pid] : []));
  const t1 = await until(kind === 'node' ? markersAt(markDir, n) : allExecd(spawnPids, n), `${n} vassals`);
  const pids = spawnPids();
  await emperor.stop();
  await waitGone(pids);
  removeDir(join(markDir, '..'));
  return t1 - emperor.startedAt;
}

// Files a deploy tool rendered a moment earlier: older than the ~20 ms write-settle of SPEC §4.
const AGED_MS = 100;
const rows = [];
const ratios = [];
const agedRatios = [];
const warmRatios = [];
for (const n of sizes) {
  const d = [];
  const drop = [];
  const dropSpawn = [];
  const dropFirst = [];
  const dropAged = [];
  const dropWarm = [];
  const boot = [];
  for (let r = 0; r < REPS; r++) {
    // Alternate the sides so that drift in machine load hits both.
    d.push(await direct(n));
    const e = await emperorDrop(n);
    drop.push(e.started);
    dropSpawn.push(e.lastSpawnLine);
    dropFirst.push(e.firstSpawnLine);
    if (!QUICK) {
      dropAged.push((await emperorDrop(n, AGED_MS)).started);
      dropWarm.push((await emperorDrop(n, AGED_MS, true)).started);
    }
    boot.push(await emperorBoot(n));
    await sleep(300);
  }
  const ratio = median(drop) / median(d);
  ratios.push(ratio);
  result(`cold-drop-${kind}-${n}`, 'emperor', median(drop));
  result(`cold-drop-${kind}-${n}`, 'direct', median(d));
  result(`cold-boot-${kind}-${n}`, 'emperor', median(boot));
  result(`cold-boot-${kind}-${n}`, 'direct', median(d));
  agedRatios.push(median(dropAged) / median(d));
  warmRatios.push(median(dropWarm) / median(d));
  rows.push([
    n,
    fmt(median(d)),
    fmt(median(drop)),
    fmt(median(dropFirst)),
    fmt(median(dropSpawn)),
    fmt(ratio, 2),
    fmt(median(dropAged)),
    fmt(median(dropAged) / median(d), 2),
    fmt(median(dropWarm)),
    fmt(median(dropWarm) / median(d), 2),
    fmt(median(boot)),
    fmt(median(boot) / median(d), 2),
  ]);
}
printTable(
  `Cold start, ${kind === 'node' ? 'tiny Node app (marker file written)' : "/bin/sleep 1000 (exec'd)"}; median of ${REPS} runs, ms`,
  [
    'N',
    'direct spawn',
    'emperor, files dropped',
    '(first spawn line)',
    '(last spawn line)',
    'ratio',
    `dropped, written ${AGED_MS} ms before`,
    'ratio',
    'same, warm emperor',
    'ratio',
    'emperor boot',
    'boot ratio',
  ],
  rows,
);
const goal = (rs) => sizes.map((n, i) => `N=${n} ${verdict(rs[i] <= 1.2)} (${fmt(rs[i], 2)})`).join(', ');
console.log(`goal ratio <= 1.2, files written just before the drop: ${goal(ratios)}`);
if (!QUICK) {
  console.log(`goal ratio <= 1.2, files written ${AGED_MS} ms before the drop: ${goal(agedRatios)}`);
  console.log(`goal ratio <= 1.2, the same into a warm emperor: ${goal(warmRatios)}`);
}
