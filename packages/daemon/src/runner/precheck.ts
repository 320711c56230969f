import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export type Resolved = { ok: true; file: string } | { ok: false; reason: string };

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
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(chdir, program);
    return executable(full) ? { ok: true, file: full } : no(`program ${full} is missing or not executable`);
  }
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const full = join(isAbsolute(dir) ? dir : resolve(chdir, dir), program);
    if (executable(full)) return { ok: true, file: full };
  }
  return no(`program ${program} not found on PATH (${path ?? ''})`);
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
