// docs/fleet.md, "Trying it: three hosts on one machine", run as written: three `emperor run`
// command lines (one etcd, distinct node names, control sockets, logs and state), one
// `emperor fleet put app.ini`, and the app answers on every "host". What a test must change is
// substituted: the etcd port, free ports for 8001-8003, a temp dir for /tmp/fleet, and python3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { BIN, PYTHON, ROOT, freePort, runCli, waitFor } from './support.js';
import { startEtcd } from './etcd-support.js';

const md = readFileSync(join(ROOT, 'docs', 'fleet.md'), 'utf8');
const section = md.slice(md.indexOf('<!-- walkthrough:'));
const blocks = [...section.matchAll(/```(sh|ini)\n([^`]*)```/g)].map((m) => ({
  lang: m[1],
  text: m[2] ?? '',
}));

function status(port: number): Promise<number> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.end();
  });
}

void test('the walkthrough of docs/fleet.md: three emperors, one etcd, one fleet put, the app answers on every host', async (t) => {
  const [setup, ini, deploy] = blocks;
  assert.equal(setup?.lang, 'sh');
  assert.equal(ini?.lang, 'ini');
  assert.equal(deploy?.lang, 'sh');
  const etcd = await startEtcd();
  const dir = mkdtempSync('/tmp/emp-');
  const stops: (() => Promise<void>)[] = [];
  // One hook, in this order: the emperors (and their vassals), then etcd, then the files.
  t.after(async () => {
    await Promise.all(stops.map((stop) => stop()));
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  const ports = [await freePort(), await freePort(), await freePort()];
  const sub = (s: string): string =>
    s
      .replaceAll('127.0.0.1:2379', etcd.endpoint)
      .replaceAll('/tmp/fleet', dir)
      .replace(/\\\n\s*/g, '');

  // The loop's body: one `emperor run` per host, run as the shell would with n=1..3.
  const run = /^\s*(APP_PORT=800\$n emperor run [^&]*)&$/m.exec(sub(setup.text))?.[1];
  assert.ok(run, 'the setup block runs `APP_PORT=800$n emperor run ... &` in a loop');
  const emperors = ports.map((port, i) => {
    const cmd = run.replace('APP_PORT=800$n emperor run', `exec env APP_PORT=${port} "$NODE" "$BIN" run`);
    const env: Record<string, string | undefined> = {
      ...process.env,
      n: String(i + 1),
      NODE: process.execPath,
      BIN,
    };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn('sh', ['-c', cmd], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<void>((done) =>
      child.once('exit', () => {
        done();
      }),
    );
    stops.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    });
    return { child, stderr: () => stderr };
  });

  writeFileSync(join(dir, 'app.ini'), ini.text.replace('exec = python3 ', `exec = ${PYTHON} `));
  const put = /^emperor (fleet put app\.ini .*)$/m.exec(sub(deploy.text))?.[1];
  assert.ok(put, 'the deploy block has `emperor fleet put app.ini ...`');
  const putArgs = put.split(/\s+/).map((a) => (a === 'app.ini' ? join(dir, 'app.ini') : a));
  // The operator's shell has no APP_PORT: each emperor's own environment gives it.
  const env = { ...process.env } as Record<string, string>;
  delete env.APP_PORT;
  const r = await runCli(putArgs, { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: `\$\(APP_PORT\)` is not set here: each emperor expands it/);

  for (const [i, port] of ports.entries())
    await waitFor(async () => (await status(port).catch(() => 0)) === 200, {
      what: `the app answering on host-${i + 1} (127.0.0.1:${port})`,
      seen: () => emperors[i]?.stderr(),
    });

  const clusterLine = /^emperor (status --cluster .*)$/m.exec(sub(deploy.text))?.[1];
  assert.ok(clusterLine, 'the deploy block ends with `emperor status --cluster ...`');
  const table = await waitFor(
    async () => {
      const c = await runCli(clusterLine.split(/\s+/));
      return (c.stdout.match(/^host-\d\s+app\s+running\s+1\s/gm) ?? []).length === 3 && c.stdout;
    },
    { what: 'three hosts running app in status --cluster' },
  );
  assert.match(table, /^3 vassals on 3 nodes$/m);
});
