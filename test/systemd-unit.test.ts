// systemd/emperor.service: `systemd-analyze verify` finds nothing to say about it, its ExecStart
// names options `emperor run` has, and its directories are the ones the emperor uses as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPaths } from '@emperor/daemon/paths';
import { ROOT, runCli } from './support.js';

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
