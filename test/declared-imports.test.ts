// Every workspace declares what it imports (an undeclared import works in the checkout, where
// npm hoists everything to the root, and fails in an install): what src/ and bin/ load is in
// `dependencies` or `peerDependencies`, what tests load may also be in `devDependencies`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './support.js';

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const SPECIFIER =
  /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|\brequire\(\s*|\bcreateRequire\([^)]*\)\(\s*)'([^'.][^']*)'/g;

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    if (f === 'dist' || f === 'node_modules' || f === 'build') return [];
    if (statSync(path).isDirectory()) return files(path);
    return /\.(ts|mts|js|mjs|cjs)$/.test(f) && !f.endsWith('.d.ts') ? [path] : [];
  });
}

/** Package names imported by these files (`@scope/name` or `name`), builtins left out. */
function imported(paths: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const path of paths)
    for (const m of readFileSync(path, 'utf8').matchAll(SPECIFIER)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0] ?? '')) continue;
      const parts = spec.split('/');
      const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? '');
      if (!found.has(name)) found.set(name, path.slice(ROOT.length + 1));
    }
  return found;
}

function undeclared(dir: string): string[] {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  const runtime = new Set([pkg.name, ...Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })]);
  const dev = new Set([...runtime, ...Object.keys(pkg.devDependencies ?? {})]);
  const problems: string[] = [];
  for (const [name, where] of imported([...files(join(dir, 'src')), ...files(join(dir, 'bin'))]))
    if (!runtime.has(name)) problems.push(`${where} imports ${name}: not in dependencies of ${pkg.name}`);
  for (const [name, where] of imported([...files(join(dir, 'test')), ...files(join(dir, 'scripts'))]))
    if (!dev.has(name)) problems.push(`${where} imports ${name}: not in (dev)dependencies of ${pkg.name}`);
  return problems;
}

void test('every workspace, and the root for test/ and bin/, declares the packages it imports', () => {
  const dirs = [ROOT, ...readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p))];
  const problems = dirs.flatMap(undeclared);
  assert.deepEqual(problems, []);
  // The scan found what it should (a regex that matched nothing would pass too).
  const daemon = imported(files(join(ROOT, 'packages', 'daemon', 'src')));
  for (const name of ['pino', 'chokidar', '@emperor/native', 'pino-pretty'])
    assert.ok(daemon.has(name), name);
});
