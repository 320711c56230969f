// `touch-reload` end to end: a new content or mtime of the path reloads its vassal, a path that
// does not exist yet is waited for, a deploy's symlink switch is seen, and `emperor show` says
// how each path is watched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlSocket, runCli, startEmperor, type LogLine } from './support.js';

/** `emperor show NAME` as printed. */
async function show(emp: Awaited<ReturnType<typeof startEmperor>>, name: string): Promise<string> {
  const r = await runCli(['show', name], { control: controlSocket(emp) });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const generationRunning = (name: string, generation: number) => (l: LogLine) =>
  l.event === 'running' && l.vassal === name && l.generation === generation;

void test('touch-reload: a new content, then a new mtime of an existing file reload the vassal', async (t) => {
  const emp = await startEmperor(t);
  const revision = join(emp.dir, 'REVISION');
  const envFile = join(emp.dir, 'shop.env');
  writeFileSync(revision, 'v1\n');
  writeFileSync(envFile, 'A=1\n');
  emp.write('touched.ini', `[vassal]\nexec = sleep 600\ntouch-reload = ${revision}\nenv-file = ${envFile}\n`);
  await emp.waitLine(generationRunning('touched', 1), 'generation 1 running');
  const shown = await show(emp, 'touched');
  assert.match(shown, new RegExp(`touch-reload: ${revision} \\(watching, exists\\)`));
  // What is watched, truthfully: the file and its touch-reload path; an env file is read at each
  // start, and nothing watches it.
  assert.match(shown, new RegExp(`watches: +${join(emp.vassals, 'touched.ini')}, ${revision}\n`));
  assert.match(shown, new RegExp(`env files: +${envFile} \\(read at each start, not watched\\)`));

  writeFileSync(revision, 'v2\n'); // new content
  const touched = await emp.waitLine((l) => l.event === 'touch-reload', 'touch-reload');
  assert.equal(touched.path, revision);
  await emp.waitLine(generationRunning('touched', 2), 'generation 2 running');

  const later = new Date(Date.now() + 5000);
  utimesSync(revision, later, later); // `touch`: the same content, a new mtime
  await emp.waitLine(generationRunning('touched', 3), 'generation 3 running');
  // One reload per touch, not one per inotify event of it.
  assert.equal(emp.lines.filter((l) => l.event === 'touch-reload').length, 2);
});

void test('touch-reload: a path that does not exist yet is watched for and reloads the vassal when it appears', async (t) => {
  const emp = await startEmperor(t);
  const dir = join(emp.dir, 'releases', 'current');
  const revision = join(dir, 'REVISION');
  emp.write('later.ini', `[vassal]\nexec = sleep 600\ntouch-reload = ${revision}\n`);
  await emp.waitLine(generationRunning('later', 1), 'generation 1 running');
  assert.match(await show(emp, 'later'), new RegExp(`touch-reload: ${revision} \\(watching, missing\\)`));
  mkdirSync(dir, { recursive: true });
  writeFileSync(revision, 'v1\n');
  await emp.waitLine(generationRunning('later', 2), 'generation 2 running');
  assert.match(await show(emp, 'later'), new RegExp(`touch-reload: ${revision} \\(watching, exists\\)`));
});

void test('touch-reload through a symlinked release directory: switching the symlink reloads the vassal', async (t) => {
  const emp = await startEmperor(t);
  const releases = join(emp.dir, 'releases');
  for (const r of ['1', '2']) {
    mkdirSync(join(releases, r), { recursive: true });
    writeFileSync(join(releases, r, 'REVISION'), `${r}\n`);
  }
  const current = join(emp.dir, 'current');
  symlinkSync(join(releases, '1'), current);
  emp.write('deployed.ini', `[vassal]\nexec = sleep 600\ntouch-reload = ${current}/REVISION\n`);
  await emp.waitLine(generationRunning('deployed', 1), 'generation 1 running');
  // As deploy tools switch: a new symlink renamed over the old one, nothing written to REVISION.
  symlinkSync(join(releases, '2'), `${current}.new`);
  renameSync(`${current}.new`, current);
  await emp.waitLine(generationRunning('deployed', 2), 'generation 2 running');
});
