// Tyrant mode (`emperor run --tyrant`, uWSGI's `emperor-tyrant`): as root, each vassal runs as the
// owner of its file, with that user's groups; root-owned files, another `user`, uWSGI's own
// `uid = 0` and symlinked files give nobody root. Needs root, to create a real test user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES,
  alive,
  freePort,
  getJson,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type EmperorProcess,
  type LogLine,
} from './support.js';

const isRoot = process.getuid?.() === 0;
const hasUseradd = existsSync('/usr/sbin/useradd');
const skip = !isRoot
  ? 'tyrant mode needs root: run the tests as root to create a test user'
  : !hasUseradd
    ? 'no useradd to create a test user'
    : false;
const UWSGI_OK = existsSync('/usr/bin/uwsgi') && existsSync('/usr/lib/uwsgi/plugins/python3_plugin.so');

const spawnOf = (name: string) => (l: LogLine) => l.event === 'spawn' && l.vassal === name;
const errorOf = (name: string) => (l: LogLine) => l.event === 'config-error' && l.vassal === name;

interface TestUser {
  readonly name: string;
  readonly uid: number;
  /** Its primary group. */
  readonly gid: number;
  /** A supplementary group it is a member of. */
  readonly extraGid: number;
}

/**
 * A user with a primary and a supplementary group of its own, removed after the test. Create it
 * after the emperor: `t.after` hooks run in the order they were added, and userdel refuses a
 * user whose processes still run.
 */
function createUser(t: { after: (fn: () => void) => void }, tag: string): TestUser {
  const name = `empt${tag}${process.pid % 100000}`;
  const extra = `${name}x`;
  const quiet = { stdio: 'ignore' as const };
  execFileSync('groupadd', [name], quiet);
  execFileSync('groupadd', [extra], quiet);
  execFileSync('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', '-g', name, '-G', extra, name], quiet);
  t.after(() => {
    for (const [cmd, arg] of [
      ['userdel', name],
      ['groupdel', name],
      ['groupdel', extra],
    ] as const)
      try {
        execFileSync(cmd, [arg], quiet);
      } catch {
        // already gone
      }
  });
  const id = (flag: string, who: string): number =>
    Number(execFileSync('id', [flag, who], { encoding: 'utf8' }).trim());
  const extraGid = Number(execFileSync('getent', ['group', extra], { encoding: 'utf8' }).split(':')[2]);
  return { name, uid: id('-u', name), gid: id('-g', name), extraGid };
}

/** Writes a vassal file owned by `uid:gid` (chown before the rename: it appears with its owner). */
function writeOwned(emp: EmperorProcess, file: string, body: string, uid: number, gid: number): void {
  const tmp = join(emp.dir, `.${file}.tmp`);
  writeFileSync(tmp, body);
  chownSync(tmp, uid, gid);
  renameSync(tmp, join(emp.vassals, file));
}

/** Real uid, gid and supplementary groups of a live process. */
function credentials(pid: number): { uid: number; gid: number; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
  return {
    uid: Number(field('Uid').split(/\s+/)[0]),
    gid: Number(field('Gid').split(/\s+/)[0]),
    groups: field('Groups').split(/\s+/).filter(Boolean).map(Number).sort(),
  };
}

/** settleScans with a marker the test user owns (a root-owned one is refused in tyrant mode). */
async function settleOwned(emp: EmperorProcess, user: TestUser): Promise<void> {
  const name = `zz-marker-${process.pid}`;
  const from = emp.lines.length;
  writeOwned(emp, `${name}.ini`, '[vassal]\nexec = /bin/sleep 1000\n', user.uid, user.gid);
  await emp.waitLine(spawnOf(name), 'the marker', from);
  rmSync(join(emp.vassals, `${name}.ini`));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === name, 'the marker removed', from);
}

/** The vassal (running as the test user) must be able to enter its directory. */
async function tyrantEmperor(t: Parameters<typeof startEmperor>[0]): Promise<EmperorProcess> {
  const emp = await startEmperor(t, { args: ['--tyrant'] });
  chmodSync(emp.dir, 0o755);
  chmodSync(emp.vassals, 0o755);
  return emp;
}

void test(
  'tyrant: each vassal runs as the owner of its file with its groups; a root-owned file and another user are refused; a change of owner stops it',
  { skip },
  async (t) => {
    const emp = await tyrantEmperor(t);
    const user = createUser(t, 'a'); // after the emperor: its cleanup runs once the emperor is gone

    writeOwned(emp, 'mine.ini', '[vassal]\nexec = /bin/sleep 1000\n', user.uid, user.gid);
    const spawned = await emp.waitLine(spawnOf('mine'), 'the vassal of the test user');
    const pid = spawned.pid as number;
    assert.deepEqual(credentials(pid), {
      uid: user.uid,
      gid: user.gid,
      groups: [user.gid, user.extraGid].sort(),
    });

    writeOwned(emp, 'rooted.ini', '[vassal]\nexec = /bin/sleep 1000\n', 0, 0);
    const rootErr = await emp.waitLine(errorOf('rooted'), 'a root-owned file refused');
    assert.equal(rootErr.code, 'EMP_CONFIG_TYRANT_ROOT');
    assert.match(
      String(rootErr.msg),
      /rooted\.ini: error: tyrant mode runs each vassal as the owner of its file, and this file belongs to uid 0 \(root\)/,
    );
    writeOwned(emp, 'gid0.ini', '[vassal]\nexec = /bin/sleep 1000\n', user.uid, 0);
    assert.equal(
      (await emp.waitLine(errorOf('gid0'), 'a gid-0 file refused')).code,
      'EMP_CONFIG_TYRANT_ROOT',
    );

    writeOwned(emp, 'escalate.ini', '[vassal]\nexec = /bin/sleep 1000\nuser = root\n', user.uid, user.gid);
    const userErr = await emp.waitLine(errorOf('escalate'), '`user = root` refused');
    assert.equal(userErr.code, 'EMP_CONFIG_TYRANT_USER');
    assert.match(
      String(userErr.msg),
      /escalate\.ini:3: error: `user = root` \(uid 0\) is not the owner of the file/,
    );

    // Symlinks are not followed: the link's owner says nothing of who wrote the target.
    const target = join(emp.dir, 'target.ini');
    writeFileSync(target, '[vassal]\nexec = /bin/sleep 1000\n');
    chownSync(target, user.uid, user.gid);
    symlinkSync(target, join(emp.vassals, 'linked.ini'));
    const ignored = await emp.waitLine(
      (l) => l.event === 'tyrant-link-ignored' && l.vassal === 'linked',
      'the symlink not followed',
    );
    assert.equal(ignored.code, 'EMP_TYRANT_SYMLINK');

    // A change of owner stops the vassal: given to root, it is refused and nothing runs.
    const from = emp.lines.length;
    chownSync(join(emp.vassals, 'mine.ini'), 0, 0);
    await emp.waitLine((l) => l.event === 'owner-changed' && l.vassal === 'mine', 'owner-changed', from);
    await waitFor(() => !alive(pid), { what: 'the vassal of the former owner stopped' });
    assert.equal(
      (await emp.waitLine(errorOf('mine'), 'refused as root-owned', from)).code,
      'EMP_CONFIG_TYRANT_ROOT',
    );
    await settleOwned(emp, user);
    for (const name of ['mine', 'rooted', 'gid0', 'escalate', 'linked'])
      assert.equal(
        emp.lines.slice(name === 'mine' ? from : 0).filter(spawnOf(name)).length,
        0,
        `${name} never ran`,
      );

    // Given back to the user, it runs again, as the user.
    chownSync(join(emp.vassals, 'mine.ini'), user.uid, user.gid);
    const again = await emp.waitLine(spawnOf('mine'), 'running again as the owner', from);
    assert.equal(credentials(again.pid as number).uid, user.uid);
  },
);

void test(
  'tyrant: a uWSGI vassal runs as the owner of its file, and its own `uid = 0`/`gid = 0` do not raise it back to root',
  {
    skip: skip || (UWSGI_OK ? false : 'uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3)'),
  },
  async (t) => {
    const port = await freePort();
    const emp = await tyrantEmperor(t);
    const user = createUser(t, 'u');
    // The app where its owner can read it: the checkout may sit in a directory only root enters.
    const app = join(emp.dir, 'wsgi_app.py');
    copyFileSync(join(FIXTURES, 'wsgi_app.py'), app);
    chmodSync(app, 0o644);
    writeOwned(
      emp,
      'uw.ini',
      `[uwsgi]\nplugins = python3\nhttp-socket = 127.0.0.1:${port}\nmaster = true\nprocesses = 2\nuid = 0\ngid = 0\nwsgi-file = ${app}\ncallable = app\n`,
      user.uid,
      user.gid,
    );
    const spawned = await emp.waitLine(spawnOf('uw'), 'spawn');
    await emp.waitLine((l) => l.event === 'running' && l.vassal === 'uw', 'READY=1 from uWSGI');
    const answer = await getJson(port);
    assert.equal(answer.master, spawned.pid);
    assert.equal(answer.uid, user.uid, 'the worker runs as the owner of the file');
    assert.equal(answer.euid, user.uid);
    assert.equal(answer.gid, user.gid);
    assert.equal(credentials(spawned.pid as number).uid, user.uid, 'so does the master');
    // And `emperor check` says nothing against it: uWSGI ignores uid/gid when it is not root.
    const check = await runCli(['check', join(emp.vassals, 'uw.ini')]);
    assert.equal(check.code, 0, check.stderr);
  },
);

void test(
  "emperor check --tyrant reads the files as tyrant mode does: a root-owned file, a `user` naming another user and a symlink are errors with the daemon's codes; uWSGI's `uid = 0` is a warning",
  { skip },
  async (t) => {
    const dir = tempDir(t);
    const user = createUser(t, 'c');
    const own = (name: string, body: string): string => {
      const path = join(dir, name);
      writeFileSync(path, body);
      chownSync(path, user.uid, user.gid);
      return path;
    };
    own('fine.ini', '[vassal]\nexec = /bin/sleep 1000\n');
    writeFileSync(join(dir, 'rooted.ini'), '[vassal]\nexec = /bin/sleep 1000\n'); // root's, as written
    own('other.ini', '[vassal]\nexec = /bin/sleep 1000\nuser = root\n');
    own('uw.ini', '[uwsgi]\nuid = 0\nhttp-socket = 127.0.0.1:18099\n');
    symlinkSync(own('target.conf', '[vassal]\nexec = /bin/sleep 1000\n'), join(dir, 'linked.ini'));

    // Without --tyrant every file is fine: the owner does not matter.
    const plain = await runCli(['check', dir]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);

    const r = await runCli(['check', '--tyrant', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /fine\.ini: ok/);
    assert.match(r.stdout, /uw\.ini: ok/);
    assert.match(
      r.stderr,
      /rooted\.ini: error: tyrant mode runs each vassal as the owner of its file, and this file belongs to uid 0 .*\[EMP_CONFIG_TYRANT_ROOT\]/,
    );
    assert.match(
      r.stderr,
      /other\.ini:3: error: `user = root` \(uid 0\) is not the owner of the file .*\[EMP_CONFIG_TYRANT_USER\]/,
    );
    assert.match(
      r.stderr,
      /linked\.ini: error: tyrant mode does not follow vassal files that are symlinks.*\[EMP_TYRANT_SYMLINK\]/,
    );
    assert.match(
      r.stderr,
      new RegExp(
        `uw\\.ini:2: warning: \`uid = 0\` does nothing in tyrant mode: uWSGI starts as the owner of the file \\(uid ${user.uid}\\).*\\[EMP_CONFIG_TYRANT_UWSGI_ID\\]`,
      ),
    );
    const json = JSON.parse(
      (await runCli(['check', '--tyrant', '--json', join(dir, 'fine.ini')])).stdout,
    ) as {
      files: { config: { user: { name: string; uid: number } } }[];
    };
    assert.deepEqual(
      [json.files[0]?.config.user.name, json.files[0]?.config.user.uid],
      [user.name, user.uid],
      'the vassal would run as the owner of its file',
    );
  },
);
