// The runtime directory holds the control socket and the state file, whose process groups the
// next emperor kills: another user who could write there could make us kill their choice of
// processes, or answer our CLI. It must be ours and writable by nobody else (SPEC §5: 0700).
import { lstatSync, mkdirSync } from 'node:fs';

export class RuntimeDirError extends Error {
  readonly code = 'EMP_RUNTIME_DIR_UNSAFE';
}

/** Creates `dir` (mode 0700) if missing, then refuses one that is not safe to trust. */
export function ensureRuntimeDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  const fix = `remove it or pass --control in a directory of your own`;
  if (st.isSymbolicLink() || !st.isDirectory())
    throw new RuntimeDirError(`runtime directory ${dir} is not a directory (a symlink?): ${fix}`);
  if (uid !== undefined && st.uid !== uid)
    throw new RuntimeDirError(
      `runtime directory ${dir} belongs to uid ${st.uid}, not to us (uid ${uid}): ${fix}`,
    );
  if ((st.mode & 0o022) !== 0)
    throw new RuntimeDirError(
      `runtime directory ${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)}): chmod go-w it, or ${fix}`,
    );
}
