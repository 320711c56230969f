// The `emperor` command line as an operator and a script meet it: usage errors, `ls`, `--json` on
// actions, `signal`, `rescan`, `status --check`, defaults in `--help`, `run --config` and shell
// completion, through the built CLI (and bash, for completion) against a real daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  controlSocket,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type CliResult,
  type LogLine,
} from './support.js';

const NODE = process.execPath;
const SLEEPER = '[vassal]\nexec = sleep 1000\nstop-timeout = 5\n';
// Says `armed` once its SIGUSR2 handler is in place, then `got SIGUSR2` per signal.
const TRAPPER = `[vassal]\nexec = ${NODE} -e "process.on('SIGUSR2', () => console.log('got SIGUSR2')); console.log('armed'); setInterval(() => {}, 1000)"\nstop-timeout = 5\n`;
const MISSING = '[vassal]\nexec = /nonexistent/bin/app\n';
const TYPO = '[vassal]\nexec = sleep 1000\nprocesess = 2\n';

function expectCode(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** A usage error: exit 2, one line of what is wrong, then where to read more; no raw parser text. */
function expectUsage(r: CliResult, what: string, says: RegExp): void {
  expectCode(r, 2, what);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `${what}: ${r.stderr}`);
  assert.match(lines[0] ?? '', says, what);
  assert.match(lines[1] ?? '', /emperor COMMAND --help/);
}

void test('status --check reports a crash loop caught between two backoffs, while it is running', async (t) => {
  // Exits 1.5 s after each start: mostly `running`, never up the 10 s that would end the loop.
  const emp = await startEmperor(t, {
    files: { 'flaky.ini': "[vassal]\nexec = sh -c 'sleep 1.5; exit 3'\nrestart-delay = 0.1\n" },
  });
  const control = controlSocket(emp);
  type Flaky = { state: string; restarts: number; quick_exits: number };
  let seen: Flaky | undefined;
  await waitFor(
    async () => {
      const s = JSON.parse((await runCli(['status', 'flaky', '--json'], { control })).stdout) as {
        vassals: Flaky[];
      };
      seen = s.vassals[0];
      return seen !== undefined && seen.state === 'running' && seen.restarts >= 2;
    },
    { what: 'flaky running again after two quick exits' },
  );
  assert.ok((seen?.quick_exits ?? 0) >= 2, `quick_exits in ${JSON.stringify(seen)}`);
  const check = await runCli(['status', '--check'], { control });
  expectCode(check, 1, 'status --check during a crash loop');
  assert.match(check.stderr, /unhealthy: flaky \((crash loop: \d+ quick exits|backoff)\)/);
  assert.match(check.stdout, /crash loop: \d+ quick exits in a row, \d+ restarts|backoff:/);
});

void test('usage errors exit 2 with one line, and suggest the option that was meant', async (t) => {
  const dir = tempDir(t);
  const control = join(dir, 'run', 'control.sock');
  const run = ['run', '--vassals', join(dir, 'v'), '--log-dir', join(dir, 'l'), '--control', control];
  expectUsage(
    await runCli([...run, '--metrics', 'abc']),
    'run --metrics abc',
    /^emperor: --metrics expects HOST:PORT or PORT, got `abc`/,
  );
  expectUsage(
    await runCli(['run', '--vassal', join(dir, 'v')]),
    'run --vassal',
    /unknown option `--vassal`; did you mean `--vassals`\?/,
  );
  expectUsage(await runCli(['status', '--jsno'], { control }), 'status --jsno', /did you mean `--json`\?/);
  expectUsage(await runCli(['stop', 'x', '--wiat'], { control }), 'stop --wiat', /did you mean `--wait`\?/);
  expectUsage(
    await runCli(['logs', 'x', '-n', '-5'], { control }),
    'logs -n -5',
    /`-n` takes a positive number, got `-5`/,
  );
  expectUsage(await runCli(['logs', 'x', '--lines=-5'], { control }), 'logs --lines=-5', /-n takes a whole/);
  expectUsage(await runCli(['status', '--control']), 'status --control', /`--control` takes a value/);
  expectUsage(
    await runCli(['run', '--log-level', 'verbose']),
    'run --log-level verbose',
    /`--log-level` must be one of debug, info, warn, error; got `verbose`/,
  );
  // A URL is never taken for a relative directory (`./ftp:/host/apps`).
  expectUsage(
    await runCli(['run', '--vassals', 'ftp://host/apps', '--log-dir', join(dir, 'l'), '--control', control]),
    'run --vassals ftp://host/apps',
    /^emperor: --vassals ftp:\/\/host\/apps: unknown scheme `ftp:\/\/`/,
  );
  expectUsage(await runCli(['check']), 'check', /missing/);
  expectUsage(
    await runCli(['status', '--json=yes'], { control }),
    'status --json=yes',
    /`--json` takes no value/,
  );
});

void test('ls, --json on actions, signal, rescan and status --check against a running emperor', async (t) => {
  const emp = await startEmperor(t, {
    files: { 'sleeper.ini': SLEEPER, 'trapper.ini': TRAPPER, 'missing.ini': MISSING, 'typo.ini': TYPO },
  });
  const control = controlSocket(emp);
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { control });
  await waitFor(
    async () => {
      const r = await cli('status', '--json');
      const s = JSON.parse(r.stdout) as { vassals: { name: string; state: string }[] };
      const state = (n: string): string | undefined => s.vassals.find((v) => v.name === n)?.state;
      return (
        state('sleeper') === 'running' && state('trapper') === 'running' && state('missing') === 'failed'
      );
    },
    { what: 'sleeper and trapper running, missing failed' },
  );
  await waitFor(() => readLog(emp.logDir, 'trapper').includes('armed'), { what: 'trapper armed' });

  // `ls` is `status`.
  const ls = await cli('ls');
  expectCode(ls, 0, 'ls');
  assert.match(ls.stdout, /^NAME +STATE/);
  assert.match(ls.stdout, /\nsleeper +running/);
  assert.deepEqual((await cli('ls', '--names')).stdout.split('\n').sort(), [
    '',
    'missing',
    'sleeper',
    'trapper',
    'typo',
  ]);

  // `status --check`: exit 1 while any vassal is failed, in backoff or has a config error.
  const unhealthy = await cli('status', '--check');
  expectCode(unhealthy, 1, 'status --check with a failed vassal and a config error');
  assert.match(unhealthy.stdout, /^NAME/);
  assert.match(unhealthy.stderr, /^emperor: unhealthy: missing \(failed\), typo \(config error\)\n$/);
  expectCode(await cli('status', 'sleeper', '--check'), 0, 'status sleeper --check');
  const unhealthyJson = await cli('status', '--check', '--json');
  expectCode(unhealthyJson, 1, 'status --check --json');
  JSON.parse(unhealthyJson.stdout);

  // --json on an action: the API's answer.
  const stopped = await cli('stop', 'sleeper', '--wait', '--json');
  expectCode(stopped, 0, 'stop --wait --json');
  const answer = JSON.parse(stopped.stdout) as { action: string; results: Record<string, unknown>[] };
  assert.equal(answer.action, 'stop');
  assert.deepEqual(
    answer.results.map((r) => [r.name, r.ok, r.state]),
    [['sleeper', true, 'stopped']],
  );
  const failed = await cli('restart', 'missing', '--wait', '--json');
  expectCode(failed, 1, 'restart missing --wait --json');
  const failedAnswer = JSON.parse(failed.stdout) as { results: { ok: boolean; reason: string }[] };
  const first = failedAnswer.results[0];
  assert.ok(first);
  assert.equal(first.ok, false);
  assert.match(first.reason, /nonexistent/);
  expectCode(await cli('start', 'sleeper', '--json'), 0, 'start --json');
  // A refusal is JSON too when JSON was asked for (the text stays on stderr).
  const unknown = await cli('restart', 'no-such-vassal', '--json');
  expectCode(unknown, 1, 'restart of an unknown vassal --json');
  const refusal = JSON.parse(unknown.stdout) as { error: { code: string; message: string } };
  assert.match(refusal.error.code, /^EMP_/);
  assert.match(refusal.error.message, /no-such-vassal/);
  assert.match(unknown.stderr, /no-such-vassal/);

  // signal: to each running instance's main process.
  const sent = await cli('signal', 'trapper', 'USR2');
  expectCode(sent, 0, 'signal trapper USR2');
  assert.match(sent.stdout, /^trapper: SIGUSR2 sent to pid \d+\n$/);
  await waitFor(() => readLog(emp.logDir, 'trapper').includes('got SIGUSR2'), { what: 'the signal arrived' });
  const sentJson = await cli('signal', 'trap*', 'SIGUSR2', '--json');
  expectCode(sentJson, 0, 'signal --json');
  const signalled = JSON.parse(sentJson.stdout) as {
    signal: string;
    results: { name: string; pids: number[] }[];
  };
  assert.equal(signalled.signal, 'SIGUSR2');
  const only = signalled.results[0];
  assert.ok(only);
  assert.equal(only.name, 'trapper');
  assert.equal(only.pids.length, 1);
  expectUsage(await cli('signal', 'trapper', 'SIGFOO'), 'signal SIGFOO', /SIGFOO/);
  expectUsage(await cli('signal', 'trapper'), 'signal without a signal', /missing/);
  const notRunning = await cli('signal', 'missing', 'HUP');
  expectCode(notRunning, 1, 'signal to a failed vassal');
  assert.match(notRunning.stderr, /^missing: not running \(failed\)/);
  expectCode(await cli('signal', 'nosuch', 'HUP'), 1, 'signal nosuch');

  // rescan: what SIGHUP does, from the command line.
  const from = emp.lines.length;
  const rescan = await cli('rescan');
  expectCode(rescan, 0, 'rescan');
  assert.match(rescan.stdout, new RegExp(`^rescanned ${emp.vassals}: 4 vassals\\n$`));
  await emp.waitLine((l: LogLine) => l.event === 'rescan', 'a rescan in the log', from);
  const rescanJson = JSON.parse((await cli('rescan', '--json')).stdout) as { vassal_dirs: string[] };
  assert.deepEqual(rescanJson.vassal_dirs, [emp.vassals]);

  // Once the broken files are gone, --check exits 0.
  rmSync(join(emp.vassals, 'missing.ini'));
  rmSync(join(emp.vassals, 'typo.ini'));
  await waitFor(async () => (await cli('status', '--check')).code === 0, { what: 'status --check exits 0' });
});

function readLog(logDir: string, name: string): string {
  try {
    return readFileSync(join(logDir, `${name}.log`), 'utf8');
  } catch {
    return '';
  }
}

void test('--help shows the defaults: the watched directory, the log directory, the socket', async (t) => {
  const dir = tempDir(t);
  const env = {
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_RUNTIME_DIR: join(dir, 'rt'),
  };
  delete process.env.EMPEROR_CONTROL;
  const help = await runCli(['run', '--help'], { env });
  expectCode(help, 0, 'run --help');
  const flat = help.stdout.replace(/\s+/g, ' ');
  if (process.getuid?.() !== 0) {
    assert.ok(flat.includes(`default: ${join(dir, 'config', 'emperor', 'vassals')}`), help.stdout);
    assert.ok(flat.includes(`default: ${join(dir, 'state', 'emperor', 'logs')}`), help.stdout);
    assert.ok(flat.includes(`default: ${join(dir, 'rt', 'emperor', 'control.sock')}`), help.stdout);
  } else {
    assert.ok(flat.includes('default: /etc/emperor/vassals'), help.stdout);
    assert.ok(flat.includes('default: /var/log/emperor'), help.stdout);
  }
  assert.ok(!flat.includes('<log-dir>/NAME.log'), 'the --log-dir help is not circular');
  assert.ok(flat.includes('default: info'), help.stdout);
  const logs = (await runCli(['logs', '--help'], { env })).stdout.replace(/\s+/g, ' ');
  assert.ok(logs.includes('default: 20'), logs);
  const stop = (await runCli(['stop', '--help'], { env })).stdout.replace(/\s+/g, ' ');
  assert.ok(stop.includes('default: 300'), stop);
});

void test('run --config: [emperor] section, repeated vassals, file:line errors, a missing file', async (t) => {
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, 'one.ini'), SLEEPER);
  writeFileSync(join(b, 'two.ini'), SLEEPER);
  const control = join(dir, 'run', 'control.sock');
  const config = join(dir, 'emperor.ini');
  writeFileSync(
    config,
    `; the emperor's own options\n[emperor]\nvassals = ${a}\nvassals = ${b}\nlog-dir = ${join(dir, 'logs')}\ncontrol = ${control}\nlog-level = warn\n`,
  );
  // The documented command line (docs/cli.md).
  const run = spawnSync(
    'sh',
    [
      '-c',
      `"$0" "$1" run --config "$2" & pid=$!; i=0; until "$0" "$1" status --names > "$3" 2>/dev/null && grep -q two "$3"; do i=$((i+1)); [ $i -gt 600 ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done; kill $pid; wait $pid`,
      NODE,
      BIN,
      config,
      join(dir, 'names'),
    ],
    { encoding: 'utf8', env: { ...process.env, EMPEROR_CONTROL: control }, timeout: 60_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(readFileSync(join(dir, 'names'), 'utf8').split('\n').sort(), ['', 'one', 'two']);

  const bad = join(dir, 'bad.ini');
  writeFileSync(bad, `[emperor]\nvassals = ${a}\nlog-dri = /tmp\n`);
  expectUsage(
    await runCli(['run', '--config', bad]),
    'an unknown key',
    new RegExp(
      `^emperor: ${bad}:3: unknown key \`log-dri\`; did you mean \`log-dir\`\\? \\[EMP_RUN_CONFIG\\]$`,
    ),
  );
  writeFileSync(bad, `[emperor]\nmetrics = 1\nmetrics = 2\n`);
  expectUsage(
    await runCli(['run', '--config', bad]),
    'a repeated key',
    new RegExp(`^emperor: ${bad}:3: .*metrics`),
  );
  // A value found bad only when it is used still names its file and line.
  writeFileSync(bad, `[emperor]\nvassals = ${a}\nmetrics = abc\n`);
  expectUsage(
    await runCli(['run', '--config', bad, '--control', join(dir, 'c.sock'), '--log-dir', join(dir, 'l')]),
    'a bad metrics address',
    new RegExp(`^emperor: ${bad}:3: \`metrics\` expects HOST:PORT or PORT, got \`abc\``),
  );
  writeFileSync(bad, `[emperor]\nvassals = ${a}\ncontrol-group = no-such-group-here\n`);
  expectUsage(
    await runCli(['run', '--config', bad, '--control', join(dir, 'c.sock'), '--log-dir', join(dir, 'l')]),
    'an unknown control group',
    new RegExp(`^emperor: ${bad}:3: \`control-group\` no group \`no-such-group-here\``),
  );
  writeFileSync(bad, `[vassal]\nvassals = ${a}\n`);
  expectUsage(
    await runCli(['run', '--config', bad]),
    'another section',
    new RegExp(`^emperor: ${bad}:1: .*\\[emperor\\]`),
  );
  writeFileSync(bad, `vassals\n`);
  expectUsage(await runCli(['run', '--config', bad]), 'not key = value', new RegExp(`^emperor: ${bad}:1: `));
  expectUsage(
    await runCli(['run', '--config', join(dir, 'nope.ini')]),
    'a missing file',
    new RegExp(`^emperor: --config ${join(dir, 'nope.ini')}: no such file \\[EMP_RUN_CONFIG\\]$`),
  );
});

void test('completion: options come from each command, vassal names from the --control on the line', async (t) => {
  const emp = await startEmperor(t, { files: { 'alpha.ini': SLEEPER, 'beta.ini': SLEEPER } });
  const dir = tempDir(t);
  // `emperor` on PATH, as an install puts it.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'emperor'), `#!/bin/sh\nexec "${NODE}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'emperor'), 0o755);
  const script = (await runCli(['completion', 'bash'])).stdout;
  writeFileSync(join(dir, 'completion.bash'), script);
  const complete = (...words: string[]): string[] => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _emperor; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        join(dir, 'completion.bash'),
        ...words,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, EMPEROR_CONTROL: '' },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .split('\n')
      .filter((w) => w !== '')
      .sort();
  };
  assert.deepEqual(complete('emperor', 'check', '--'), ['--help', '--json', '--tyrant', '--uwsgi']);
  assert.ok(complete('emperor', 'stop', '--').includes('--json'));
  assert.ok(complete('emperor', '').includes('ls'));
  assert.ok(complete('emperor', '').includes('signal'));
  assert.ok(complete('emperor', '').includes('rescan'));
  assert.deepEqual(complete('emperor', 'status', '--check', '--control', controlSocket(emp), ''), [
    'alpha',
    'beta',
  ]);
  assert.deepEqual(complete('emperor', 'stop', `--control=${controlSocket(emp)}`, 'a'), ['all', 'alpha']);
  assert.deepEqual(complete('emperor', 'run', '--log-level', ''), ['debug', 'error', 'info', 'warn']);
  assert.deepEqual(complete('emperor', 'signal', '--control', controlSocket(emp), 'alpha', 'US'), [
    'USR1',
    'USR2',
  ]);
});

void test('a closed pipe ends the output quietly, with an option before the command too (`emperor --control SOCK version | true`)', (t) => {
  const dir = tempDir(t);
  for (const args of [['version'], ['--control', join(dir, 'none.sock'), 'version']]) {
    // `true` exits without reading: every write of the CLI meets a closed pipe (EPIPE).
    const words = [process.execPath, BIN, ...args].map((w) => `'${w}'`).join(' ');
    const r = spawnSync('sh', ['-c', `${words} | true`], {
      encoding: 'utf8',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: '' },
    });
    assert.equal(r.status, 0);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at /, `${args.join(' ')}: ${r.stderr}`);
  }
});
