// systemd/emperor.service: `systemd-analyze verify` finds nothing to say about it, its ExecStart
// names options `emperor run` has, and its directories are the ones the emperor uses as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { defaultPaths } from '@emperor/daemon/paths';
import { FIXTURES, ROOT, getJson, node, runCli, startEmperor, tempDir, waitFor } from './support.js';

const UNIT = join(ROOT, 'systemd', 'emperor.service');

/** `Key=value` lines of the [Service] section (repeated keys: every value). */
function serviceKeys(): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(UNIT, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

function one(keys: Map<string, string[]>, key: string): string {
  const values = keys.get(key) ?? [];
  assert.equal(values.length, 1, `${key}= once in ${UNIT}`);
  return values[0] ?? '';
}

void test('systemd-analyze verify systemd/emperor.service is clean', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    t.skip('systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)');
    return;
  }
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  // Unknown keys and bad values are only warnings (exit 0): clean means nothing printed.
  assert.equal(`${r.stdout}${r.stderr}`, '', 'systemd-analyze verify prints nothing');
  assert.equal(r.status, 0);
});

void test('the unit is a notify service with the directories, signals and delegation the emperor needs', () => {
  const keys = serviceKeys();
  const expected: Record<string, string> = {
    Type: 'notify',
    ExecReload: '/bin/kill -HUP $MAINPID',
    KillMode: 'mixed',
    Restart: 'on-failure',
    RuntimeDirectory: 'emperor',
    LogsDirectory: 'emperor',
    Delegate: 'yes',
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(one(keys, key), value, key);
  assert.ok(parseFloat(one(keys, 'TimeoutStopSec')) > 30, 'TimeoutStopSec above the default stop-timeout');
  assert.ok(parseFloat(one(keys, 'WatchdogSec')) > 0, 'WatchdogSec set');
  // Options that would break vassals or containment (docs/install.md says why each is absent).
  for (const key of ['ProtectControlGroups', 'PrivateTmp', 'NoNewPrivileges', 'MemoryDenyWriteExecute'])
    assert.ok(!keys.has(key), `${key}= is not set`);
});

void test("ExecStart runs `emperor run` with options it has, on the root defaults' paths", async () => {
  const exec = one(serviceKeys(), 'ExecStart').split(/\s+/);
  assert.deepEqual(exec.slice(0, 3), ['/usr/bin/env', 'emperor', 'run']);
  const options = new Map<string, string>();
  for (let i = 3; i < exec.length; i += 2) options.set(exec[i] ?? '', exec[i + 1] ?? '');
  const help = await runCli(['run', '--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const name of options.keys()) assert.match(help.stdout, new RegExp(`^\\s+${name}\\s`, 'm'), name);
  const root = defaultPaths({}, 0);
  assert.deepEqual(Object.fromEntries(options), {
    '--vassals': root.vassals,
    '--log-dir': root.logDir,
    '--control': root.control,
  });
  assert.equal(root.logDir, '/var/log/emperor', 'LogsDirectory=emperor');
  assert.equal(root.runtimeDir, '/run/emperor', 'RuntimeDirectory=emperor');
});

/** A port below 1024 that nothing listens on now (only root can bind it). */
async function lowPort(): Promise<number> {
  for (let port = 1023; port > 600; port--) {
    const free = await new Promise<boolean>((done) => {
      const srv = createServer();
      srv.once('error', () => {
        done(false);
      });
      srv.listen(port, '127.0.0.1', () => {
        srv.close(() => {
          done(true);
        });
      });
    });
    if (free) return port;
  }
  throw new Error('no free port between 601 and 1023');
}

void test(
  "under the unit's capability bounding set the emperor binds a low port, runs a vassal as another user, and a root vassal writes into another user's directory",
  { skip: process.getuid?.() === 0 ? false : 'needs root (the unit runs the emperor as root)' },
  async (t) => {
    const bounding = one(serviceKeys(), 'CapabilityBoundingSet');
    assert.ok(bounding.startsWith('~'), 'a list of capabilities taken away');
    const drop = bounding
      .slice(1)
      .split(/\s+/)
      .map((c) => `-${c.toLowerCase().replace(/^cap_/, '')}`)
      .join(',');
    // The app where `nobody` can read it, and a directory only `nobody` may write.
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const app = join(dir, 'app.mjs');
    copyFileSync(join(FIXTURES, 'socket-app.mjs'), app);
    chmodSync(app, 0o644);
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    const port = await lowPort();
    const emp = await startEmperor(t, {
      prefix: ['setpriv', `--bounding-set=${drop}`, '--'],
      files: {
        'web.ini': `[vassal]\nexec = ${node()} ${app}\nsocket = http=127.0.0.1:${port}\nuser = nobody\n`,
        'writer.ini': `[vassal]\nexec = /bin/sh -c 'echo written > ${theirs}/out; exec sleep 100'\n`,
      },
    });
    const bnd = /\nCapBnd:\t([0-9a-f]+)\n/.exec(
      readFileSync(`/proc/${emp.child.pid ?? 0}/status`, 'utf8'),
    )?.[1];
    assert.equal(BigInt(`0x${bnd ?? '0'}`) & (1n << 21n), 0n, 'the emperor runs without CAP_SYS_ADMIN');
    const answer = await waitFor(() => getJson(port), {
      what: `web on 127.0.0.1:${port}`,
      seen: () => emp.lines,
    });
    assert.equal(answer.inherited, true, 'served on the socket the emperor bound');
    const uid = /\nUid:\t(\d+)\t/.exec(readFileSync(`/proc/${String(answer.pid)}/status`, 'utf8'))?.[1];
    assert.equal(uid, '65534', 'runs as nobody');
    await waitFor(
      () => {
        try {
          return readFileSync(join(theirs, 'out'), 'utf8') === 'written\n';
        } catch {
          return false;
        }
      },
      { what: `${theirs}/out written by the root vassal`, seen: () => emp.lines },
    );
  },
);
