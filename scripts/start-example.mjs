#!/usr/bin/env node
// `npm start`: the built emperor on vassals.example/, with its control socket, state file and
// vassal logs in ./.emperor-run/ (git-ignored), so nothing outside the checkout is touched.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'emperor.js');
const vassals = join(root, 'vassals.example');
const runDir = join(root, '.emperor-run');
const control = join(runDir, 'control.sock');
const logDir = join(runDir, 'logs');

if (!existsSync(join(root, 'packages', 'cli', 'dist', 'src', 'main.js'))) {
  console.error('emperor is not built yet: run `npm ci` (or `npm run build`) first.');
  process.exit(1);
}
mkdirSync(runDir, { recursive: true, mode: 0o700 });

const rel = (p) => relative(process.cwd(), p) || '.';
const cli = `node ${rel(bin)}`;
console.error(`
  emperor: supervising ${rel(vassals)}/*.ini (vassal logs in ${rel(logDir)}/)

    curl http://127.0.0.1:8101/              # hello
    curl http://127.0.0.1:8102/              # ticker, instance 0 (8103: instance 1)
    curl http://127.0.0.1:8104/              # pool: 2 instances on one socket the emperor owns
    curl http://127.0.0.1:8105/              # lazy: started by this first request
    curl http://127.0.0.1:8106/              # shop: a side worker and a job every minute beside it
    ${cli} status --control ${rel(control)}
    touch ${rel(join(vassals, 'hello.ini'))}   # reload hello: new pid, generation + 1
    touch ${rel(join(vassals, 'ticker.ini'))}  # reload ticker in place: SIGHUP, same pids
    touch ${rel(join(vassals, 'pool.ini'))}    # rolling reload: no request refused

  Ctrl-C stops every vassal and the emperor.
`);

// Its own process group: a Ctrl-C in the terminal reaches this script only, and the emperor
// gets exactly one signal from us (a second signal would make it kill its vassals at once).
const emperor = spawn(
  process.execPath,
  [bin, 'run', '--vassals', vassals, '--control', control, '--log-dir', logDir],
  { stdio: 'inherit', detached: true },
);

let forwardedAt = 0;
const forward = (signal) => {
  // npm and the terminal may both deliver one Ctrl-C: a repeat within a second is the same one.
  const now = Date.now();
  if (now - forwardedAt < 1000) return;
  forwardedAt = now;
  if (emperor.exitCode === null && emperor.signalCode === null) emperor.kill(signal);
};
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
process.on('SIGHUP', forward);

emperor.on('error', (err) => {
  console.error(`emperor: cannot start ${bin}: ${err.message}`);
  process.exit(1);
});
emperor.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1));
});

function signalNumber(name) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[name];
}
