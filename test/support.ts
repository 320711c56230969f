// End-to-end test support: a real `emperor run` in a temp directory, its JSON log parsed as it
// arrives, and `waitFor` that fails with what it last saw.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
  readFileSync,
  existsSync,
  renameSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, type Agent } from 'node:http';
import type { TestContext } from 'node:test';

export const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
export const BIN = join(ROOT, 'packages', 'cli', 'bin', 'emperor.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
/**
 * Debian's python3 (the one gunicorn and uwsgi's plugin use), not the first on PATH: a pyenv shim
 * there takes ~2 s per start, which a test that counts crash-loop starts cannot afford.
 */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

import { DEADLINE_MS, waitFor } from '@emperor/test-support';

export { DEADLINE_MS, waitFor };
export { asUserReading, keepAliveClient, type KeepAliveClient } from '@emperor/test-support';

export type LogLine = Record<string, unknown> & { event?: string; vassal?: string; msg?: string };

export interface EmperorProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly vassals: string;
  readonly logDir: string;
  readonly lines: LogLine[];
  readonly stderr: string[];
  /** Writes a vassal file (atomically: write elsewhere, rename into place). */
  write(name: string, body: string): void;
  /** Waits for a log line matching `pred` that arrived after `from` (an index into `lines`). */
  waitLine(pred: (l: LogLine) => boolean, what: string, from?: number, timeout?: number): Promise<LogLine>;
  /** SIGTERM and wait for the exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempDir(t: TestContext): string {
  // Short paths: unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync('/tmp/emp-');
  t.after(() => {
    removeQuietly(dir);
  });
  return dir;
}

/**
 * A failing `t.after` hook skips the hooks after it (node:test), and a skipped emperor-stopping
 * hook leaves the test file hanging: cleanup of files never throws.
 */
function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // a process still writing there (ENOTEMPTY): leave the rest to /tmp's cleaner
  }
}

export async function startEmperor(
  t: TestContext,
  opts: {
    files?: Record<string, string>;
    args?: string[];
    env?: Record<string, string>;
    /** A command that execs the emperor (`prlimit --nofile=64:64 --`): the pid stays the emperor's. */
    prefix?: readonly string[];
    /** The directory of an earlier emperor: the same vassals, logs and runtime directory (a restart). */
    dir?: string;
  } = {},
): Promise<EmperorProcess> {
  // Not tempDir(t): hooks run in the order they were added, and this directory must outlive the
  // emperor writing its state file and logs there; it is removed in the hook that stops it.
  const dir = opts.dir ?? mkdtempSync('/tmp/emp-');
  const vassals = join(dir, 'vassals');
  const logDir = join(dir, 'logs');
  mkdirSync(vassals, { recursive: true });
  for (const [name, body] of Object.entries(opts.files ?? {})) writeFileSync(join(vassals, name), body);
  const env = { ...process.env, ...opts.env };
  delete env.NODE_EXTRA_CA_CERTS; // costs ~35 ms per Node start here, and nothing in the tests needs it
  const [cmd, ...pre] = opts.prefix ?? [];
  const child = spawn(
    cmd ?? process.execPath,
    [
      ...pre,
      ...(cmd ? [process.execPath] : []),
      BIN,
      'run',
      '--vassals',
      vassals,
      '--log-dir',
      logDir,
      '--control',
      join(dir, 'run', 'control.sock'),
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir },
  );
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        lines.push({ msg: line, event: 'non-json' });
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => {
      done({ code, signal });
    }),
  );
  const emp: EmperorProcess = {
    child,
    dir,
    vassals,
    logDir,
    lines,
    stderr,
    exited,
    write(name, body) {
      const tmp = join(dir, `.${name}.tmp`);
      writeFileSync(tmp, body);
      // rename(2) into place, as deploy tools should.
      renameSync(tmp, join(vassals, name));
    },
    async waitLine(pred, what, from = 0, timeout = DEADLINE_MS) {
      return waitFor(() => lines.slice(from).find(pred), {
        what,
        timeout,
        seen: () => ({ lines: lines.slice(-15), stderr: stderr.join('').slice(-2000) }),
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return (await exited).code;
    },
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Whatever a test spawned must be gone, whatever the test did.
    for (const l of lines) if (l.event === 'spawn' && typeof l.pid === 'number') killGroupQuietly(l.pid);
    removeQuietly(dir);
  });
  await emp.waitLine((l) => l.event === 'emperor-ready', 'emperor-ready');
  return emp;
}

export function killGroupQuietly(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}

/** GET http://127.0.0.1:port/ and parse the JSON answer. */
/** One GET of a JSON answer; `agent` keeps a connection alive across calls (default: a new one each). */
export function getJson(
  port: number,
  path = '/',
  agent: Agent | false = false,
): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          done(JSON.parse(body) as Record<string, unknown>);
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', fail);
    // Waking an on-demand app is part of the answer: gunicorn's start took over 5 s at load 20.
    req.setTimeout(DEADLINE_MS, () => req.destroy(new Error(`no answer within ${DEADLINE_MS} ms`)));
    req.end();
  });
}

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests that bind it right after). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        done(typeof addr === 'object' && addr ? addr.port : 0);
      });
    });
  });
}

export function node(): string {
  return process.execPath;
}

/** The `spawn` lines of the log (of one vassal, when named), from index `from` on. */
export function spawnLines(lines: readonly LogLine[], name?: string, from = 0): LogLine[] {
  return lines.slice(from).filter((l) => l.event === 'spawn' && (name === undefined || l.vassal === name));
}

/** Live (non-zombie) members of a process group, from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[2] === String(pgid) && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

let markers = 0;

/**
 * Waits until every scan the emperor had pending has been applied: drops a marker vassal (a
 * name no test uses) and waits for its spawn, then removes it again. Scans are serialized and
 * each lists the whole directory, so whatever was on disk before is applied too.
 */
export async function settleScans(emp: EmperorProcess, dir = emp.vassals): Promise<void> {
  const name = `zz-marker-${process.pid}-${markers++}`;
  const from = emp.lines.length;
  writeFileSync(join(dir, `${name}.ini`), '[vassal]\nexec = /bin/sleep 1000\n');
  await emp.waitLine((l) => l.event === 'spawn' && l.vassal === name, `the ${name} marker`, from);
  rmSync(join(dir, `${name}.ini`));
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === name, `the ${name} marker removed`, from);
}

/** The control socket the harness gives `emperor run`. */
export function controlSocket(emp: EmperorProcess): string {
  return join(emp.dir, 'run', 'control.sock');
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `emperor` CLI to its end (stdout is a pipe: no colors). */
export function runCli(
  args: readonly string[],
  opts: { control?: string; env?: Record<string, string>; timeout?: number; prefix?: readonly string[] } = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (opts.control !== undefined) env.EMPEROR_CONTROL = opts.control;
  const [cmd, ...pre] = opts.prefix ?? [];
  const child = spawn(cmd ?? process.execPath, [...pre, ...(cmd ? [process.execPath] : []), BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? DEADLINE_MS);
  return new Promise((done) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    }),
  );
}

export interface Load {
  /** Every failed request's message, in order. */
  readonly failures: readonly string[];
  /** Requests answered so far. */
  ok(): number;
  /** Stops the loops and waits for the requests in flight. */
  stop(): Promise<void>;
}

/**
 * `clients` loops sending `request` back to back until stopped: a load a reload must not break.
 * The test's end stops them too: a test that fails before its own `stop()` must not leave loops
 * that keep its file's process alive (the suite then hung on it).
 */
export function startLoad(t: TestContext, request: () => Promise<unknown>, clients: number): Load {
  let stopped = false;
  let ok = 0;
  const failures: string[] = [];
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        await request();
        ok += 1;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: clients }, loop);
  const stop = async (): Promise<void> => {
    stopped = true;
    await Promise.all(loops);
  };
  t.after(stop);
  return { failures, ok: () => ok, stop };
}

/** A live process found by the `MARK=<mark>` its vassal's `env` gave it (its descendants inherit it). */
export interface MarkedProcess {
  readonly pid: number;
  /** A variable of its environment at exec ('' when unset). */
  readonly env: (name: string) => string;
  readonly cmdline: string;
}

/** The environment of a live process, from /proc. */
export function envOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** A vassal that is one `sleep`; `V` tells versions apart through its environment (envOf). */
export const sleeper = (version: string | number, extra = ''): string =>
  `[vassal]\nexec = /bin/sleep 1000\nenv = V=${version}\nstop-timeout = 5\n${extra}`;

/** Every live (non-zombie) process whose environment carries `MARK=<mark>`, from /proc. */
export function markedProcesses(mark: string): MarkedProcess[] {
  const out: MarkedProcess[] = [];
  const needle = `MARK=${mark}`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (!environ.includes(needle)) continue;
      out.push({
        pid: Number(entry),
        env: (name) => environ.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1) ?? '',
        cmdline: readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').join(' ').trim(),
      });
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return out;
}

/** SIGKILL to every process `markedProcesses(mark)` finds: a test's cleanup, whatever it left. */
export function killMarked(mark: string): void {
  for (const p of markedProcesses(mark)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
