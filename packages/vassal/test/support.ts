// Helpers shared by this package's tests: deadlines instead of sleeps, children that never outlive
// their test, fixtures read from the source tree.
import { fileURLToPath } from 'node:url';

export { childEnv, exited, lines, spawnChild, waitFor } from '@emperor/test-support';

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}
