// The baseline of the cold-start bench: a plain Node script that spawns the same commands directly,
// in parallel, with child_process.spawn. It waits for "go" on stdin (so its own start-up is not
// timed), spawns everything in one synchronous loop, prints the pids as one JSON line, and kills
// its children when stdin closes.
// Usage: node bench/direct-spawn.mjs '<JSON array of argv arrays>'
import { spawn } from 'node:child_process';

const commands = JSON.parse(process.argv[2]);
const children = [];
const killAll = () => {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
};
process.on('exit', killAll);
process.stdin.setEncoding('utf8');
process.stdin.once('data', () => {
  for (const [file, ...args] of commands) {
    // Output piped and drained, as a supervisor that keeps logs must do.
    const c = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.resume();
    children.push(c);
  }
  process.stdout.write(`${JSON.stringify(children.map((c) => c.pid))}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdout.write('ready\n');
