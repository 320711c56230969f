// What a user installs (docs/install.md): `npm pack` of the repository, then `npm i -g --prefix`
// from the tarball alone (--offline, an empty npm cache and home) with only `node` on PATH (no cc,
// gcc, make or python3; `sh` and `node` alone) and no Node headers configured. The installed `emperor` then answers
// --version, checks the shipped examples, and runs a vassal from them on an owned socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { exitStatus, spawnChild } from '@emperor/test-support';
import { ROOT, freePort, getJson, node, tempDir, waitFor } from './support.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The `[emperor]` file that docs/install.md shows for `--config`. */
function documentedIni(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'install.md'), 'utf8');
  const block = /```ini\n(\[emperor\]\n[^`]*)```/.exec(doc);
  assert.ok(block?.[1], 'docs/install.md shows an [emperor] file');
  return block[1];
}

/** npm's own script: `npm` on PATH is a symlink to it, and the bare PATH below has no npm. */
function npmCli(): string {
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
  assert.equal(which.status, 0, 'npm is on PATH');
  return realpathSync(which.stdout.trim());
}

void test('npm pack, then npm i -g --prefix with no compiler: a working emperor', async (t) => {
  const dir = tempDir(t);
  const npm = npmCli();

  // --ignore-scripts: the tests run after `tsc -b`; `prepare` would only build it again.
  const pack = spawnSync(process.execPath, [npm, 'pack', '--ignore-scripts', '--pack-destination', dir], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = join(dir, `emperor-${VERSION}.tgz`);
  assert.ok(existsSync(tarball), `${tarball} from: ${pack.stdout}`);

  // A PATH with node and sh alone, a home with no .npmrc (no `nodedir`) and no node-gyp header cache.
  const bin = join(dir, 'bin');
  const home = join(dir, 'home');
  mkdirSync(bin);
  mkdirSync(home);
  symlinkSync(node(), join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs install scripts with `sh`
  const globalrc = join(dir, 'npmrc');
  writeFileSync(globalrc, '');
  const env = { PATH: bin, HOME: home, npm_config_globalconfig: globalrc };
  for (const tool of ['cc', 'gcc', 'make', 'python3', 'node-gyp'])
    assert.notEqual(
      spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status,
      0,
      `${tool} is not on PATH`,
    );

  const prefix = join(dir, 'prefix');
  const install = spawnSync(
    process.execPath,
    [npm, 'i', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball],
    { env, encoding: 'utf8', cwd: dir },
  );
  assert.equal(install.status, 0, `npm i -g failed:\n${install.stdout}\n${install.stderr}`);
  const pkg = join(prefix, 'lib', 'node_modules', 'emperor');
  const native = join(pkg, 'node_modules', '@emperor', 'native');
  assert.ok(!existsSync(join(native, 'build')), 'nothing was compiled: the prebuilt addon is used');
  assert.ok(!existsSync(join(pkg, 'node_modules', 'pino-pretty')), 'pino-pretty is not installed');

  const emperor = join(prefix, 'bin', 'emperor');
  const run = (args: string[]) => spawnSync(emperor, args, { env, encoding: 'utf8', cwd: dir });

  const version = run(['--version']);
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), VERSION);

  // docs/install.md copies the unit from the installed package.
  assert.equal(
    readFileSync(join(pkg, 'systemd', 'emperor.service'), 'utf8'),
    readFileSync(join(ROOT, 'systemd', 'emperor.service'), 'utf8'),
  );

  const examples = join(pkg, 'vassals.example');
  const check = run(['check', examples]);
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  const inis = readdirSync(examples).filter((f) => f.endsWith('.ini'));
  assert.ok(inis.length > 0);
  for (const f of inis) assert.match(check.stdout, new RegExp(`${f}: ok`));

  // `run --config FILE` with the shipped pool app (it uses the bundled @emperor/vassal SDK) on a
  // socket the emperor binds.
  const port = await freePort();
  const vassals = join(dir, 'vassals');
  mkdirSync(vassals);
  mkdirSync(join(dir, 'more'));
  writeFileSync(
    join(vassals, 'pool.ini'),
    `[vassal]\nexec = node ${join(examples, 'apps', 'pool.mjs')}\nsocket = http=127.0.0.1:${port}\nready = fd\n`,
  );
  // The emperor.ini of docs/install.md, its paths moved into the temp directory.
  const control = join(dir, 'run', 'control.sock');
  const metricsPort = await freePort();
  const moved: Record<string, string> = {
    '/etc/emperor/vassals': vassals,
    '/srv/apps/*.ini': join(dir, 'more', '*.ini'),
    '/var/log/emperor': join(dir, 'logs'),
    '/run/emperor/control.sock': control,
    emperor: String(process.getgid?.() ?? 0), // control-group: one this user has
    '127.0.0.1:9101': `127.0.0.1:${metricsPort}`,
  };
  const config = join(dir, 'emperor.ini');
  writeFileSync(
    config,
    documentedIni().replace(/^([\w-]+) = (.*)$/gm, (_line, key: string, value: string) => {
      const to = moved[value];
      assert.ok(to !== undefined, `docs/install.md: no stand-in for ${key} = ${value}`);
      return `${key} = ${to}`;
    }),
  );
  const daemon = spawnChild(t, emperor, ['run', '--config', config], {
    env,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  daemon.stdout?.setEncoding('utf8').on('data', (c: string) => (log += c));
  daemon.stderr?.setEncoding('utf8').on('data', (c: string) => (log += c));
  const answer = await waitFor(() => getJson(port), { what: `pool on 127.0.0.1:${port}`, seen: () => log });
  assert.equal(answer.vassal, 'pool');
  const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(metrics.status, 200);
  await metrics.text();
  const status = run(['status', '--control', control, '--json']);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /"pool"/);
  // Without pino-pretty the log is the same JSON lines as under systemd.
  assert.match(log.split('\n')[0] ?? '', /^\{.*"event":/);
  daemon.kill('SIGTERM');
  assert.equal(await exitStatus(daemon), 0, log);

  // On a terminal the log would be pretty; without pino-pretty it stays JSON.
  const logger = join(pkg, 'node_modules', '@emperor', 'daemon', 'dist', 'src', 'logger.js');
  const pretty = spawnSync(
    node(),
    [
      '--input-type=module',
      '-e',
      `const { createLogger } = await import(${JSON.stringify(logger)});\n` +
        `const log = createLogger({ pretty: true }); log.info({ event: 'probe' }, 'probe'); log.flush();`,
    ],
    { env, encoding: 'utf8' },
  );
  assert.equal(pretty.status, 0, pretty.stderr);
  assert.deepEqual(JSON.parse(pretty.stdout), { ...JSON.parse(pretty.stdout), event: 'probe', msg: 'probe' });
});
