// Replaces the running program and keeps its pid: `emperor run` restarts its own Node once with
// the V8 flags that take effect only on Node's command line (the heap's sizes are fixed at start).
import { addon } from './binding.js';
import { withErrnoCode } from './errors.js';

/**
 * execve(2) of `file` with `args` (args[0] included) and `env`. Returns only by throwing, with
 * `code` the errno name (`ENOENT`, `E2BIG`, ...), and then nothing has changed.
 */
export function replaceProcess(file: string, args: readonly string[], env: NodeJS.ProcessEnv): never {
  const entries = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  try {
    addon().execve(file, args, entries);
  } catch (error) {
    throw withErrnoCode(error);
  }
  throw new Error('execve returned without an error');
}
