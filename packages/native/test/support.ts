// Helpers shared by this package's tests: deadlines instead of sleeps, short temp dirs, fixtures.
import { readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { exitStatus as exited, spawnChild, tempDir, waitFor } from '@emperor/test-support';

/** Fixture programs are read from the source tree (they are not compiled). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}

/** The kernel object behind one of our fds, e.g. `socket:[123456]`: how a child's fds are matched. */
export function fdTarget(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}
