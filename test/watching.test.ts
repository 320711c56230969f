// How files reach the emperor: every way people and tools write, copy, move, link and name vassal
// files, in a real watched directory, and what the emperor runs afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { vassalNameOf } from '@emperor/config';
import {
  alive,
  controlSocket,
  envOf,
  runCli,
  sleeper,
  settleScans,
  spawnLines,
  startEmperor,
  tempDir,
  waitFor,
  type EmperorProcess,
  type LogLine,
} from './support.js';

const removedOf = (name: string) => (l: LogLine) => l.event === 'removed' && l.vassal === name;

/** Waits for a spawn of `name` after `from` and checks what it runs; returns its pid. */
async function spawned(emp: EmperorProcess, name: string, from: number, version?: string): Promise<number> {
  const line = await emp.waitLine((l) => l.event === 'spawn' && l.vassal === name, `spawn of ${name}`, from);
  const pid = line.pid as number;
  if (version !== undefined) {
    const v = await waitFor(() => envOf(pid).V, { what: `the environment of ${pid}` });
    assert.equal(v, version, `${name} runs version ${version}`);
  }
  return pid;
}

/** Waits for the reload that replaces `oldPid` with a process running `version`. */
async function reloaded(
  emp: EmperorProcess,
  name: string,
  from: number,
  oldPid: number,
  version: string,
): Promise<number> {
  const pid = await spawned(emp, name, from, version);
  assert.notEqual(pid, oldPid);
  await waitFor(() => !alive(oldPid), { what: `the old process ${oldPid} gone` });
  return pid;
}

void test('300 files created at once all start; deleted at once, all stop and no process is left', async (t) => {
  const emp = await startEmperor(t);
  const N = 300;
  const t0 = Date.now();
  for (let i = 0; i < N; i++)
    writeFileSync(join(emp.vassals, `v${String(i).padStart(3, '0')}.ini`), sleeper(i));
  const spawns = await waitFor(
    () => {
      const s = spawnLines(emp.lines);
      return new Set(s.map((l) => l.vassal)).size === N && s;
    },
    { what: `${N} spawns`, timeout: 30_000, seen: () => spawnLines(emp.lines).length },
  );
  const started = Date.now() - t0;
  assert.equal(spawns.length, N, 'each vassal spawned once');
  const pids = spawns.map((l) => l.pid as number);
  assert.equal(new Set(pids).size, N);
  // Every process runs its own file's version.
  for (const l of spawns) assert.equal(envOf(l.pid as number).V, String(Number(String(l.vassal).slice(1))));
  assert.ok(pids.every(alive), 'all alive');

  const t1 = Date.now();
  for (let i = 0; i < N; i++) rmSync(join(emp.vassals, `v${String(i).padStart(3, '0')}.ini`));
  await waitFor(() => emp.lines.filter((l) => l.event === 'removed').length === N, {
    what: `${N} removed lines`,
    timeout: 30_000,
    seen: () => emp.lines.filter((l) => l.event === 'removed').length,
  });
  await waitFor(() => pids.every((p) => !alive(p)), {
    what: 'every pid gone',
    seen: () => pids.filter(alive),
  });
  const stopped = Date.now() - t1;
  t.diagnostic(`${N} vassals: all spawned in ${started} ms, all stopped in ${stopped} ms`);
  assert.equal(spawnLines(emp.lines).length, N, 'nothing was spawned twice');
  assert.equal(await emp.stop(), 0);
});

void test('every way of saving a file reloads it: rename over, touch, sed -i, truncate-and-write, cp -p', async (t) => {
  const emp = await startEmperor(t);
  const file = join(emp.vassals, 'app.ini');
  let from = emp.lines.length;
  emp.write('app.ini', sleeper(1));
  let pid = await spawned(emp, 'app', from, '1');

  // An editor's or deploy tool's atomic save: write a temp file, rename it over. Twice within a
  // few ms (chokidar alone drops the second `change`): the last content wins.
  from = emp.lines.length;
  emp.write('app.ini', sleeper(2));
  emp.write('app.ini', sleeper(3));
  pid = await reloaded(emp, 'app', from, pid, '3');
  await settleScans(emp);

  // touch with identical content: a reload, new process, same version.
  from = emp.lines.length;
  execFileSync('touch', ['-d', '+5 seconds', file]);
  const touch = await emp.waitLine(
    (l) => l.event === 'reload' && l.vassal === 'app',
    'reload after touch',
    from,
  );
  assert.equal(touch.touched, true);
  pid = await reloaded(emp, 'app', from, pid, '3');

  // sed -i: GNU sed writes ./sedXXXXXX (ignored: not *.ini) and renames it over.
  from = emp.lines.length;
  execFileSync('sed', ['-i', 's/V=3/V=4/', file]);
  pid = await reloaded(emp, 'app', from, pid, '4');

  // In place, same inode: truncate and write (vim with backupcopy=yes, `echo > file`).
  from = emp.lines.length;
  writeFileSync(file, sleeper(5));
  pid = await reloaded(emp, 'app', from, pid, '5');

  // Same size, same mtime, new content (cp -p / rsync -t of a release): the hash tells.
  from = emp.lines.length;
  const stamp = new Date(Date.now() - 3600_000);
  const src = join(emp.dir, 'release.ini');
  writeFileSync(src, sleeper(6));
  utimesSync(src, stamp, stamp);
  utimesSync(file, stamp, stamp); // itself a touch: one more reload
  pid = await reloaded(emp, 'app', from, pid, '5');
  await settleScans(emp);
  from = emp.lines.length;
  execFileSync('cp', ['-p', src, file]);
  pid = await reloaded(emp, 'app', from, pid, '6');
  assert.ok(alive(pid));
});

void test('cp and mv into the directory start a vassal; cp over a running one reloads it', async (t) => {
  const emp = await startEmperor(t);
  const outside = tempDir(t);
  writeFileSync(join(outside, 'a.ini'), sleeper('a1'));
  writeFileSync(join(outside, 'b.ini'), sleeper('b1'));
  writeFileSync(join(outside, 'a2.ini'), sleeper('a2'));

  let from = emp.lines.length;
  copyFileSync(join(outside, 'a.ini'), join(emp.vassals, 'a.ini')); // cp: in place, new inode
  const a = await spawned(emp, 'a', from, 'a1');

  from = emp.lines.length;
  renameSync(join(outside, 'b.ini'), join(emp.vassals, 'b.ini')); // mv on the same file system
  await spawned(emp, 'b', from, 'b1');

  from = emp.lines.length;
  execFileSync('cp', [join(outside, 'a2.ini'), join(emp.vassals, 'a.ini')]); // cp over: same inode, new content
  await reloaded(emp, 'a', from, a, 'a2');
});

void test('renaming a vassal file stops the old name and starts the new one', async (t) => {
  const emp = await startEmperor(t);
  let from = emp.lines.length;
  emp.write('old.ini', sleeper(1));
  const pid = await spawned(emp, 'old', from, '1');
  from = emp.lines.length;
  renameSync(join(emp.vassals, 'old.ini'), join(emp.vassals, 'new.ini'));
  await emp.waitLine(removedOf('old'), 'old removed', from);
  await spawned(emp, 'new', from, '1');
  assert.ok(!alive(pid));

  // Renamed away from *.ini: the way to keep an app down.
  from = emp.lines.length;
  renameSync(join(emp.vassals, 'new.ini'), join(emp.vassals, 'new.ini.disabled'));
  await emp.waitLine(removedOf('new'), 'new removed', from);
});

void test('a symlinked vassal file runs its target; editing the target reloads it', async (t) => {
  const emp = await startEmperor(t);
  const releases = tempDir(t);
  const target = join(releases, 'linked.ini');
  writeFileSync(target, sleeper(1));
  let from = emp.lines.length;
  symlinkSync(target, join(emp.vassals, 'linked.ini'));
  let pid = await spawned(emp, 'linked', from, '1');

  from = emp.lines.length;
  writeFileSync(target, sleeper(2)); // in place
  pid = await reloaded(emp, 'linked', from, pid, '2');

  from = emp.lines.length;
  writeFileSync(`${target}.new`, sleeper(3));
  renameSync(`${target}.new`, target); // the target replaced by rename
  pid = await reloaded(emp, 'linked', from, pid, '3');

  // Pointing the link elsewhere (ln -sfn) applies the other file.
  const other = join(releases, 'other.ini');
  writeFileSync(other, sleeper(4));
  from = emp.lines.length;
  symlinkSync(other, join(emp.vassals, '.linked.tmp'));
  renameSync(join(emp.vassals, '.linked.tmp'), join(emp.vassals, 'linked.ini'));
  pid = await reloaded(emp, 'linked', from, pid, '4');

  // A dangling link is no file: the vassal stops.
  from = emp.lines.length;
  unlinkSync(other);
  await emp.waitLine(removedOf('linked'), 'removed after the target is gone', from);
  assert.ok(!alive(pid));
});

void test('ignored names never start anything (SPEC §3)', async (t) => {
  const emp = await startEmperor(t);
  const ignored = [
    '.hidden.ini', // dotfile
    '.app.ini.swp', // vim swap
    'app.ini~', // editor backup
    'app.ini.swp',
    'app.ini.swx',
    '#app.ini#', // emacs autosave
    'app.ini.tmp',
    'app.tmp',
    'app.conf', // not .ini
    'app.INI',
    'app',
    'with space.ini', // not [A-Za-z0-9._-]+
    'caf\u00e9.ini',
    'semi;colon.ini',
  ];
  for (const name of ignored) assert.equal(vassalNameOf(name), undefined, `${name} is ignored by the rule`);
  const accepted = { 'a-b_c.d.ini': 'a-b_c.d', '0.ini': '0', 'app.ini.ini': 'app.ini' };
  for (const [file, name] of Object.entries(accepted)) assert.equal(vassalNameOf(file), name);

  for (const name of ignored) writeFileSync(join(emp.vassals, name), sleeper(name));
  mkdirSync(join(emp.vassals, 'sub.ini')); // a directory named like a vassal
  writeFileSync(join(emp.vassals, 'sub.ini', 'inner.ini'), sleeper('inner'));
  const from = emp.lines.length;
  for (const file of Object.keys(accepted)) emp.write(file, sleeper(file));
  for (const name of Object.values(accepted)) await spawned(emp, name, from);
  await settleScans(emp);
  const names = new Set(spawnLines(emp.lines).map((l) => l.vassal));
  for (const name of names)
    assert.ok(
      Object.values(accepted).includes(String(name)) || String(name).startsWith('zz-marker-'),
      `${String(name)} should not have started`,
    );
  assert.ok(!emp.lines.some((l) => l.event === 'config-error'), 'ignored files are not even read');
});

void test('the same name in two watched directories: EMP_VASSAL_DUPLICATE, the first keeps running', async (t) => {
  const second = join(tempDir(t), 'more');
  mkdirSync(second);
  const emp = await startEmperor(t, { args: ['--vassals', second] });
  let from = emp.lines.length;
  emp.write('twin.ini', sleeper('first'));
  const first = await spawned(emp, 'twin', from, 'first');

  from = emp.lines.length;
  writeFileSync(join(second, 'twin.ini'), sleeper('second'));
  const err = await emp.waitLine(
    (l) => l.event === 'config-error' && l.code === 'EMP_VASSAL_DUPLICATE',
    'EMP_VASSAL_DUPLICATE',
    from,
  );
  assert.equal(err.vassal, 'twin');
  assert.equal(err.file, join(second, 'twin.ini'));
  assert.match(String(err.msg), new RegExp(`already defined by ${join(emp.vassals, 'twin.ini')}`));
  await settleScans(emp);
  assert.equal(spawnLines(emp.lines, 'twin', from).length, 0, 'the duplicate started nothing');
  assert.ok(alive(first), 'the first keeps running');
  assert.equal(
    emp.lines.filter((l) => l.code === 'EMP_VASSAL_DUPLICATE').length,
    1,
    'reported once, not at every scan',
  );
  const st = await runCli(['status', 'twin', '--json'], { control: controlSocket(emp) });
  const twin = (JSON.parse(st.stdout) as { vassals: { error: { code: string; file: string } | null }[] })
    .vassals[0];
  assert.equal(twin?.error?.code, 'EMP_VASSAL_DUPLICATE', 'status shows the ignored duplicate');
  assert.equal(twin.error.file, join(second, 'twin.ini'));

  // Once the first file is gone, the second one is the vassal.
  from = emp.lines.length;
  rmSync(join(emp.vassals, 'twin.ini'));
  await reloaded(emp, 'twin', from, first, 'second');
});

void test('--vassals DIR/GLOB watches only the matching files of that directory', async (t) => {
  const apps = join(tempDir(t), 'apps');
  mkdirSync(apps);
  const emp = await startEmperor(t, { args: ['--vassals', join(apps, 'web-*.ini')] });
  const from = emp.lines.length;
  writeFileSync(join(apps, 'db.ini'), sleeper('db'));
  writeFileSync(join(apps, 'web-1.ini'), sleeper('w1'));
  writeFileSync(join(apps, 'web-2.ini'), sleeper('w2'));
  await spawned(emp, 'web-1', from, 'w1');
  await spawned(emp, 'web-2', from, 'w2');
  await settleScans(emp);
  assert.equal(spawnLines(emp.lines, 'db').length, 0, 'db.ini does not match web-*.ini');
  rmSync(join(apps, 'web-2.ini'));
  await emp.waitLine(removedOf('web-2'), 'web-2 removed', from);
});

void test('SIGHUP rescans without reloading what is unchanged; a switched symlinked directory is followed', async (t) => {
  const base = tempDir(t);
  mkdirSync(join(base, 'release-1'));
  mkdirSync(join(base, 'release-2'));
  writeFileSync(join(base, 'release-1', 'one.ini'), sleeper('r1'));
  writeFileSync(join(base, 'release-2', 'two.ini'), sleeper('r2'));
  const current = join(base, 'current');
  symlinkSync(join(base, 'release-1'), current);
  const emp = await startEmperor(t, {
    files: { 'steady.ini': sleeper('s') },
    args: ['--vassals', current],
  });
  const steady = await spawned(emp, 'steady', 0, 's');
  const one = await spawned(emp, 'one', 0, 'r1');

  // Nothing changed: a rescan re-reads every file and reloads nothing.
  let from = emp.lines.length;
  emp.child.kill('SIGHUP');
  await emp.waitLine((l) => l.event === 'rescan', 'rescan', from);
  await settleScans(emp);
  assert.ok(!emp.lines.slice(from).some((l) => l.event === 'reload'), 'no reload');
  assert.ok(alive(steady) && alive(one));

  // A deploy switches `current` to the next release (ln -sfn: a new link renamed over): applied
  // without a signal, and later edits inside the new release are seen.
  from = emp.lines.length;
  symlinkSync(join(base, 'release-2'), join(base, 'current.tmp'));
  renameSync(join(base, 'current.tmp'), current);
  const two = await spawned(emp, 'two', from, 'r2');
  await emp.waitLine(removedOf('one'), 'one removed', from);
  assert.ok(!alive(one));
  assert.ok(alive(steady));
  from = emp.lines.length;
  writeFileSync(join(base, 'release-2', 'two.ini'), sleeper('r2b'));
  await spawned(emp, 'two', from, 'r2b');
  await waitFor(() => !alive(two), { what: 'the old two gone' });
});

void test('a watched directory moved away or removed, then re-created, is watched again (#11 item 3)', async (t) => {
  const emp = await startEmperor(t, { files: { 'a.ini': sleeper('a1') } });
  const a = await spawned(emp, 'a', 0, 'a1');

  // `mv vassals vassals.old; mkdir vassals; cp *.ini vassals/`, in one go: the old vassal stops
  // or reloads, and what runs is the new directory's file.
  let from = emp.lines.length;
  renameSync(emp.vassals, `${emp.vassals}.old`);
  mkdirSync(emp.vassals);
  writeFileSync(join(emp.vassals, 'a.ini'), sleeper('a2'));
  await spawned(emp, 'a', from, 'a2');
  await waitFor(() => !alive(a), { what: 'the old a gone' });
  // Watched, not read once: a later file starts, an edit reloads.
  from = emp.lines.length;
  writeFileSync(join(emp.vassals, 'b.ini'), sleeper('b1'));
  await spawned(emp, 'b', from, 'b1');
  // The old directory is nothing to the emperor any more.
  from = emp.lines.length;
  writeFileSync(join(`${emp.vassals}.old`, 'old.ini'), sleeper('old'));
  await settleScans(emp);
  assert.equal(spawnLines(emp.lines, 'old', from).length, 0, 'vassals.old is not watched');

  // `rm -rf vassals`: everything stops; `mkdir vassals` and a file in it: started.
  from = emp.lines.length;
  rmSync(emp.vassals, { recursive: true });
  await emp.waitLine(removedOf('a'), 'a removed', from);
  await emp.waitLine(removedOf('b'), 'b removed', from);
  const missing = await emp.waitLine(
    (l) => l.event === 'watch-dir-missing' && l.dir === emp.vassals,
    'watch-dir-missing',
    from,
  );
  assert.equal(missing.level, 40, 'a warning');
  from = emp.lines.length;
  const t0 = Date.now();
  mkdirSync(emp.vassals);
  writeFileSync(join(emp.vassals, 'c.ini'), sleeper('c1'));
  const c = await spawned(emp, 'c', from, 'c1');
  t.diagnostic(`re-created directory: mkdir to spawn in ${Date.now() - t0} ms`);
  from = emp.lines.length;
  writeFileSync(join(emp.vassals, 'c.ini'), sleeper('c2'));
  await reloaded(emp, 'c', from, c, 'c2');
  assert.ok(!emp.lines.some((l) => l.event === 'watch-error'), 'a vanished directory is no watcher error');
});

void test('a dangling symlink is logged once and starts when its target appears (#11 item 4)', async (t) => {
  const emp = await startEmperor(t);
  const releases = join(tempDir(t), 'releases');
  const target = join(releases, 'app', 'late.ini');
  let from = emp.lines.length;
  symlinkSync(target, join(emp.vassals, 'late.ini')); // neither the file nor its directories exist yet
  const dangling = await emp.waitLine(
    (l) => l.event === 'dangling-link' && l.vassal === 'late',
    'dangling-link',
    from,
  );
  assert.equal(dangling.level, 40, 'a warning');
  assert.equal(dangling.file, join(emp.vassals, 'late.ini'));
  assert.equal(dangling.target, target);
  await settleScans(emp);
  assert.equal(
    emp.lines.filter((l) => l.event === 'dangling-link').length,
    1,
    'logged once, not at every scan',
  );
  // status says so too, and stops saying it once the target is there.
  const control = controlSocket(emp);
  const links = async (): Promise<{ file: string; target: string }[]> =>
    (
      JSON.parse((await runCli(['status', '--json'], { control })).stdout) as {
        emperor: { dangling_links: { file: string; target: string }[] };
      }
    ).emperor.dangling_links;
  assert.deepEqual(await links(), [{ file: join(emp.vassals, 'late.ini'), target }]);
  assert.match(
    (await runCli(['status'], { control })).stdout.replace(/\n +/g, ' '),
    /late\.ini is a symlink to .*late\.ini, which does not exist: it starts when that appears/,
  );

  from = emp.lines.length;
  const t0 = Date.now();
  mkdirSync(join(releases, 'app'), { recursive: true });
  writeFileSync(target, sleeper('late1'));
  const pid = await spawned(emp, 'late', from, 'late1');
  t.diagnostic(`dangling link: target written to spawn in ${Date.now() - t0} ms`);
  await waitFor(async () => (await links()).length === 0, { what: 'no dangling link in status' });
  // And its target is watched from now on.
  from = emp.lines.length;
  writeFileSync(target, sleeper('late2'));
  await reloaded(emp, 'late', from, pid, 'late2');
});

void test('a file still being written in place is not a config error (#11 item 17)', async (t) => {
  const emp = await startEmperor(t);
  const file = join(emp.vassals, 'slow.ini');
  // `cat > slow.ini` on a loaded machine: the file is created empty, and the write comes later.
  const fd = openSync(file, 'w');
  t.after(() => {
    closeSync(fd);
  });
  const created = statSync(file).mtimeMs;
  // A writer that stalls for longer than a write takes to settle, and a scan of the directory
  // meanwhile (a marker vassal started after it).
  await waitFor(() => Date.now() - created > 100, { what: 'the empty file 100 ms old' });
  const from = emp.lines.length;
  writeFileSync(join(emp.vassals, 'marker.ini'), sleeper('m'));
  await spawned(emp, 'marker', from);
  writeSync(fd, sleeper('s1'));
  await spawned(emp, 'slow', from, 's1');
  const errors = emp.lines.filter((l) => (l.level as number) >= 50);
  assert.deepEqual(errors, [], 'no error-level line');
});

void test('a watched directory that does not exist yet is warned about and started when it appears (#11 item 24)', async (t) => {
  const base = tempDir(t);
  const later = join(base, 'later');
  const deep = join(base, 'not', 'yet', 'vassals');
  const emp = await startEmperor(t, { args: ['--vassals', later, '--vassals', join(deep, '*.ini')] });
  for (const dir of [later, deep]) {
    const warn = emp.lines.find((l) => l.event === 'watch-dir-missing' && l.dir === dir);
    assert.ok(warn, `a warning for ${dir} before emperor-ready`);
    assert.equal(warn.level, 40);
    assert.ok(emp.lines.indexOf(warn) < emp.lines.findIndex((l) => l.event === 'emperor-ready'));
  }
  // status says so too, rather than "drop a NAME.ini file into" a directory that is not there.
  const control = controlSocket(emp);
  const table = (await runCli(['status'], { control })).stdout;
  assert.match(
    table.replace(/\n +/g, ' '),
    new RegExp(`watched directory ${later} does not exist: its vassals start when it appears`),
  );
  assert.match(table, new RegExp(`drop a NAME\\.ini file into ${emp.vassals} to start one\n`));
  const json = JSON.parse((await runCli(['status', '--json'], { control })).stdout) as {
    emperor: { missing_dirs: string[] };
  };
  assert.deepEqual(json.emperor.missing_dirs, [later, deep].sort());
  let from = emp.lines.length;
  mkdirSync(later);
  writeFileSync(join(later, 'one.ini'), sleeper('one'));
  await spawned(emp, 'one', from, 'one');
  from = emp.lines.length;
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'two.ini'), sleeper('two'));
  await spawned(emp, 'two', from, 'two');
  await emp.waitLine((l) => l.event === 'watch-dir-found' && l.dir === deep, 'watch-dir-found', from);
  await waitFor(
    async () =>
      (
        JSON.parse((await runCli(['status', '--json'], { control })).stdout) as {
          emperor: { missing_dirs: string[] };
        }
      ).emperor.missing_dirs.length === 0,
    { what: 'no missing directory in status' },
  );
  // Its grandparent removed and made again: still watched for.
  from = emp.lines.length;
  rmSync(join(base, 'not'), { recursive: true });
  await emp.waitLine(removedOf('two'), 'two removed', from);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'three.ini'), sleeper('three'));
  await spawned(emp, 'three', from, 'three');
  assert.ok(!emp.lines.some((l) => l.event === 'watch-error'));
});

void test('a symlinked watched directory whose release is removed and re-created is watched again', async (t) => {
  const base = tempDir(t);
  const release = join(base, 'release-1');
  mkdirSync(release);
  writeFileSync(join(release, 'one.ini'), sleeper('r1'));
  const current = join(base, 'current');
  symlinkSync(release, current);
  const emp = await startEmperor(t, { args: ['--vassals', current] });
  await spawned(emp, 'one', 0, 'r1');
  let from = emp.lines.length;
  rmSync(release, { recursive: true });
  await emp.waitLine(removedOf('one'), 'one removed', from);
  from = emp.lines.length;
  mkdirSync(release);
  writeFileSync(join(release, 'one.ini'), sleeper('r1b'));
  const one = await spawned(emp, 'one', from, 'r1b');
  from = emp.lines.length;
  writeFileSync(join(release, 'one.ini'), sleeper('r1c'));
  await reloaded(emp, 'one', from, one, 'r1c');
});
