// etcd over TLS with client certificates (docs/fleet.md, "Security"): certificates made by openssl
// for this run; the emperor and the CLI (`fleet`, `status --cluster`) take the same options.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, controlSocket, runCli, startEmperor, waitFor } from './support.js';
import { startEtcd, type Etcd, type EtcdCerts } from './etcd-support.js';

let etcd: Etcd;
let certs: EtcdCerts;
before(async () => {
  etcd = await startEtcd({ tls: { clientCertAuth: true } });
  if (!etcd.certs) throw new Error('no certificates');
  certs = etcd.certs;
});
after(async () => {
  await etcd.destroy();
});

const tlsArgs = (): string[] => [
  '--etcd-cacert',
  certs.ca,
  '--etcd-cert',
  certs.clientCert,
  '--etcd-key',
  certs.clientKey,
];

void test('over HTTPS with a client certificate: the emperor watches, fleet put|ls|rm and status --cluster take the same options', async (t) => {
  const url = etcd.url('/tls');
  const dir = mkdtempSync('/tmp/emp-');
  const emp = await startEmperor(t, {
    dir,
    args: ['--vassals', url, '--state-dir', join(dir, 'state'), '--node-name', 'tls-1', ...tlsArgs()],
  });
  const files = mkdtempSync('/tmp/emp-');
  t.after(() => {
    rmSync(files, { recursive: true, force: true });
  });
  writeFileSync(join(files, 'secure.ini'), '[vassal]\nexec = /bin/sleep 1000\nstop-timeout = 5\n');
  const put = await runCli(['fleet', 'put', join(files, 'secure.ini'), '--etcd', url, ...tlsArgs()]);
  assert.equal(put.code, 0, put.stderr);
  const spawn = await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'secure', 'spawn of secure');

  const ls = await runCli(['fleet', 'ls', '--json', '--etcd', url, ...tlsArgs()]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(
    (JSON.parse(ls.stdout) as { vassals: { name: string }[] }).vassals.map((v) => v.name),
    ['secure'],
  );
  await waitFor(
    async () => {
      const r = await runCli(['status', '--cluster', '--json', '--etcd', url, ...tlsArgs()]);
      assert.equal(r.code, 0, r.stderr);
      const c = JSON.parse(r.stdout) as { vassals: { node: string; name: string; state: string }[] };
      return c.vassals.some((v) => v.node === 'tls-1' && v.name === 'secure' && v.state === 'running');
    },
    { what: 'tls-1 publishing secure as running' },
  );
  const rm = await runCli(['fleet', 'rm', 'secure', '--etcd', url, ...tlsArgs()]);
  assert.equal(rm.code, 0, rm.stderr);
  await waitFor(() => !alive(spawn.pid as number), { what: 'secure stopped' });
});

void test('a server not signed by --etcd-cacert, or no client certificate: refused, and the error says which', async (t) => {
  const url = etcd.url('/tls');
  const plain = await runCli(['fleet', 'ls', '--etcd', url]);
  assert.equal(plain.code, 1, plain.stderr);
  assert.match(plain.stderr, /if etcd serves HTTPS, give --etcd-cacert/);
  // TLS, but the system's CAs: none of them signed the test CA.
  const noCa = await runCli([
    'fleet',
    'ls',
    '--etcd',
    url,
    '--etcd-cert',
    certs.clientCert,
    '--etcd-key',
    certs.clientKey,
  ]);
  assert.equal(noCa.code, 1, noCa.stderr);
  assert.match(noCa.stderr, /is --etcd-cacert the CA that signed etcd's certificate\?/);
  const noClient = await runCli(['status', '--cluster', '--etcd', url, '--etcd-cacert', certs.ca]);
  assert.equal(noClient.code, 1, noClient.stderr);
  assert.match(noClient.stderr, /etcd refused the TLS handshake .*give --etcd-cert and --etcd-key/);

  // The emperor trusts the CA but has no client certificate: etcd refuses it; status says why.
  const dir = mkdtempSync('/tmp/emp-');
  const emp = await startEmperor(t, {
    dir,
    args: ['--vassals', url, '--state-dir', join(dir, 'state'), '--etcd-cacert', certs.ca],
  });
  await emp.waitLine((l) => l.event === 'etcd-unreachable', 'etcd-unreachable');
  const r = await runCli(['status', '--json'], { control: controlSocket(emp) });
  const store = (JSON.parse(r.stdout) as { emperor: { stores: { connected: boolean; error: string }[] } })
    .emperor.stores[0];
  assert.equal(store?.connected, false);
  assert.match(store.error, /etcd refused the TLS handshake .*give --etcd-cert and --etcd-key/);
});
