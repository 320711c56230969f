// etcd with authentication on (docs/fleet.md): the emperor logs in as a read-only user whose
// password comes from a file, never the command line; a wrong password is said in status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, controlSocket, runCli, startEmperor, waitFor } from './support.js';
import { startEtcd, type Etcd } from './etcd-support.js';

let etcd: Etcd;
const root = ['--user', 'root:rootpw'];
before(async () => {
  etcd = await startEtcd();
  await etcd.ctl('user', 'add', 'root', '--new-user-password=rootpw', '--interactive=false');
  await etcd.ctl('user', 'add', 'emp', '--new-user-password=emp pw', '--interactive=false');
  await etcd.ctl('role', 'add', 'vassal-reader');
  await etcd.ctl('role', 'grant-permission', 'vassal-reader', 'read', '--prefix=true', '/apps/vassals/');
  await etcd.ctl('user', 'grant-role', 'emp', 'vassal-reader');
  await etcd.ctl('auth', 'enable');
});
after(async () => {
  await etcd.destroy();
});

void test('with --etcd-user and --etcd-password-file the emperor reads and watches a prefix it may only read', async (t) => {
  const dir = mkdtempSync('/tmp/emp-');
  const passwordFile = join(dir, 'etcd-password');
  writeFileSync(passwordFile, 'emp pw\n', { mode: 0o600 });
  await etcd.ctl(...root, 'put', '/apps/vassals/secure', '[vassal]\nexec = /bin/sleep 1000\n');
  const emp = await startEmperor(t, {
    dir,
    args: [
      '--vassals',
      etcd.url('/apps'),
      '--state-dir',
      join(dir, 'state'),
      '--etcd-user',
      'emp',
      '--etcd-password-file',
      passwordFile,
    ],
  });
  await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'secure', 'spawn of secure');
  const from = emp.lines.length;
  await etcd.ctl(...root, 'put', '/apps/vassals/later', '[vassal]\nexec = /bin/sleep 1000\n');
  await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'later', 'spawn of later (watched)', from);
  const ps = await runCli(['status', '--json'], { control: controlSocket(emp) });
  assert.doesNotMatch(ps.stdout, /emp pw/, 'the password is shown nowhere');
});

void test('a wrong password: the source is unreachable, and status says why', async (t) => {
  const dir = mkdtempSync('/tmp/emp-');
  const emp = await startEmperor(t, {
    dir,
    env: { EMPEROR_ETCD_PASSWORD: 'wrong' },
    args: ['--vassals', etcd.url('/apps'), '--state-dir', join(dir, 'state'), '--etcd-user', 'emp'],
  });
  await emp.waitLine((l) => l.event === 'etcd-unreachable', 'etcd-unreachable');
  const store = await waitFor(
    async () => {
      const r = await runCli(['status', '--json'], { control: controlSocket(emp) });
      const s = JSON.parse(r.stdout) as {
        emperor: { stores: { connected: boolean; error: string | null }[] };
      };
      return s.emperor.stores[0];
    },
    { what: 'the store in status' },
  );
  assert.equal(store.connected, false);
  assert.match(store.error ?? '', /authentication failed|invalid user ID or password/);
});

void test('the users and roles of docs/fleet.md: an emperor reads and publishes, an operator deploys, neither does more', async (t) => {
  const md = readFileSync(join(ROOT, 'docs', 'fleet.md'), 'utf8');
  const block = /<!-- roles:[^>]*-->\n```sh\n([^`]*)```/.exec(md)?.[1];
  assert.ok(block, 'docs/fleet.md has the roles block');
  for (const line of block.trim().split('\n')) {
    const args = line.split(/\s+/).slice(1); // after `etcdctl`
    if (args.join(' ') === 'user add root' || args.join(' ') === 'auth enable') continue; // done above
    // `user add NAME` asks for the password; a test gives it on the command line.
    if (args[0] === 'user' && args[1] === 'add')
      args.push(`--new-user-password=${args[2]}-pw`, '--interactive=false');
    await etcd.ctl(...root, ...args);
  }
  const dir = mkdtempSync('/tmp/emp-');
  writeFileSync(join(dir, 'emperor-pw'), 'emperor-web-1-pw\n', { mode: 0o600 });
  writeFileSync(join(dir, 'alice-pw'), 'alice-pw\n', { mode: 0o600 });
  writeFileSync(join(dir, 'shop.ini'), '[vassal]\nexec = /bin/sleep 1000\nstop-timeout = 5\n');
  const url = etcd.url('/apps');
  const emp = await startEmperor(t, {
    dir,
    args: [
      '--vassals',
      url,
      '--state-dir',
      join(dir, 'state'),
      '--node-name',
      'web-1',
      '--etcd-user',
      'emperor-web-1',
      '--etcd-password-file',
      join(dir, 'emperor-pw'),
    ],
  });
  const alice = { EMPEROR_ETCD_USER: 'alice', EMPEROR_ETCD_PASSWORD_FILE: join(dir, 'alice-pw') };
  const put = await runCli(['fleet', 'put', join(dir, 'shop.ini'), '--etcd', url], { env: alice });
  assert.equal(put.code, 0, put.stderr);
  await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'shop', 'spawn of shop');
  await waitFor(
    async () => {
      const r = await runCli(['status', '--cluster', '--json', '--etcd', url], { env: alice });
      assert.equal(r.code, 0, r.stderr);
      const c = JSON.parse(r.stdout) as { vassals: { node: string; name: string; state: string }[] };
      return c.vassals.some((v) => v.node === 'web-1' && v.name === 'shop' && v.state === 'running');
    },
    { what: "web-1's status, read by alice" },
  );
  assert.equal(
    emp.lines.filter((l) => l.event === 'status-publish-failed').length,
    0,
    'the emperor publishes',
  );
  // The emperor's user cannot deploy.
  const denied = await runCli(['fleet', 'put', join(dir, 'shop.ini'), '--etcd', url], {
    env: { EMPEROR_ETCD_USER: 'emperor-web-1', EMPEROR_ETCD_PASSWORD_FILE: join(dir, 'emperor-pw') },
  });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /permission denied/);
});
