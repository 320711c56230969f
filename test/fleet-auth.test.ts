// etcd with authentication on (docs/fleet.md): the emperor logs in as a read-only user whose
// password comes from a file, never the command line; a wrong password is said in status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlSocket, runCli, startEmperor, waitFor } from './support.js';
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
