// The hash of what the addon is compiled from: binding.gyp and the C files, in name order. The
// prebuild script records it beside the binaries; a test fails when the sources have moved on.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function sourcesHash(pkg) {
  const files = readdirSync(pkg)
    .filter((f) => f === 'binding.gyp' || f.endsWith('.c') || f.endsWith('.h'))
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(readFileSync(join(pkg, f)))
      .update('\0');
  return hash.digest('hex');
}
