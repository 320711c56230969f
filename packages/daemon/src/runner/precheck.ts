import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/**
 * Checks, before spawning, what would otherwise surface as a crash loop: a missing working
 * directory or program. Returns the reason, or undefined when the spawn may go ahead.
 */
export function precheck(
  argv: readonly string[],
  chdir: string,
  path: string | undefined,
): string | undefined {
  try {
    if (!statSync(chdir).isDirectory()) return `chdir ${chdir} is not a directory`;
  } catch {
    return `chdir ${chdir} does not exist`;
  }
  const program = argv[0];
  if (program === undefined || program === '') return 'exec is empty';
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(chdir, program);
    return executable(full) ? undefined : `program ${full} is missing or not executable`;
  }
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(isAbsolute(dir) ? dir : resolve(chdir, dir), program)))
      return undefined;
  }
  return `program ${program} not found on PATH (${path ?? ''})`;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
