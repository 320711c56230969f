// Everything that can fail before a spawn, checked in one place: by the spawn itself, and by the
// runner before a reload or restart stops the generation that serves (a reload that cannot start
// must leave it running, as a config error does).
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { VassalConfig } from '@emperor/config';
import { childEnv, type InstanceIdentity } from './child-env.js';

export type Resolved = { ok: true; file: string } | { ok: false; reason: string };

export type Prepared =
  { ok: true; file: string; env: Record<string, string> } | { ok: false; reason: string };

/** The instance's environment and program, or why it cannot be spawned (env-file, user, chdir, program). */
export function prepareSpawn(
  config: VassalConfig,
  id: InstanceIdentity,
  baseEnv: Readonly<Record<string, string | undefined>>,
  /** What to exec: the app's `exec`, or a side process's own command line. */
  argv: readonly string[] = config.argv,
): Prepared {
  let env: Record<string, string>;
  try {
    env = childEnv(config, id, baseEnv);
  } catch (err) {
    return { ok: false, reason: `cannot read env-file: ${(err as Error).message}` };
  }
  const problem = identityProblem(config);
  if (problem) return { ok: false, reason: problem };
  const program = resolveProgram(argv, config.chdir, env.PATH);
  return program.ok ? { ok: true, file: program.file, env } : program;
}

/** Why an instance of `config` could not be spawned now, or undefined when it could. */
export function precheck(
  config: VassalConfig,
  baseEnv: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const prepared = prepareSpawn(config, { generation: 0, index: 0 }, baseEnv);
  return prepared.ok ? undefined : prepared.reason;
}

/** Whether `user` / `group` differ from the emperor's own (spawn's uid/gid cannot set supplementary groups). */
export function switchesIdentity(config: VassalConfig): boolean {
  const { user, group } = config;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return (user !== undefined && user.uid !== uid) || (group !== undefined && group.gid !== gid);
}

/** Why this emperor cannot run the vassal as its `user` / `group`, if it cannot. */
export function identityProblem(config: VassalConfig): string | undefined {
  const { user, group } = config;
  if (!switchesIdentity(config)) return undefined;
  if ((process.getuid?.() ?? 0) !== 0)
    return `only root can run a vassal as ${user ? `user ${user.name}` : `group ${group?.name ?? ''}`}`;
  return undefined;
}

/**
 * Finds the program to exec as execvp() would, with the instance's PATH and working directory,
 * and turns what would otherwise surface as a crash loop (a missing working directory or
 * program) into a reason.
 */
export function resolveProgram(argv: readonly string[], chdir: string, path: string | undefined): Resolved {
  const no = (reason: string): Resolved => ({ ok: false, reason });
  try {
    if (!statSync(chdir).isDirectory()) return no(`chdir ${chdir} is not a directory`);
  } catch {
    return no(`chdir ${chdir} does not exist`);
  }
  const program = argv[0];
  if (program === undefined || program === '') return no('exec is empty');
  const found = (full: string): Resolved => {
    const interpreter = missingInterpreter(full);
    return interpreter === undefined
      ? { ok: true, file: full }
      : no(`program ${full} starts with \`#!${interpreter}\`, which is missing or not executable`);
  };
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(chdir, program);
    return executable(full) ? found(full) : no(`program ${full} is missing or not executable`);
  }
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const full = join(isAbsolute(dir) ? dir : resolve(chdir, dir), program);
    if (executable(full)) return found(full);
  }
  return no(`program ${program} not found on PATH (${path ?? ''})`);
}

/**
 * The interpreter a script's `#!` line names, when it cannot be run: execve would fail with
 * ENOENT after the old generation was stopped. Reads the first 256 bytes of the program.
 */
function missingInterpreter(file: string): string | undefined {
  const head = Buffer.alloc(256);
  let n = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined; // unreadable but executable: let execve decide
  }
  if (n < 3 || head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  const line = head.subarray(2, n).toString('latin1').split('\n')[0] ?? '';
  const interpreter = line.trim().split(/[ \t]+/)[0] ?? '';
  if (!isAbsolute(interpreter)) return undefined; // the kernel takes it relative to the caller's cwd: rare
  return executable(interpreter) ? undefined : interpreter;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
