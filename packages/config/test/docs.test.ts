// The docs are kept in sync with the code (as fastify tests docs/Reference/Errors.md):
// docs/config.md documents exactly the keys of keys.ts, docs/errors.md exactly the codes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, KEY_NAMES } from '../src/index.js';

const docs = new URL('../../../../docs/', import.meta.url);

function diff(documented: readonly string[], actual: readonly string[], what: string): void {
  const missing = actual.filter((k) => !documented.includes(k));
  const extra = documented.filter((k) => !actual.includes(k));
  assert.deepEqual(
    { missing, extra },
    { missing: [], extra: [] },
    `${what}: undocumented (missing) or documented but not in the code (extra)`,
  );
  assert.equal(new Set(documented).size, documented.length, `${what}: documented twice`);
}

void test('docs/config.md documents every key, and only keys that exist', () => {
  const md = readFileSync(new URL('config.md', docs), 'utf8');
  const keysSection = md.slice(md.indexOf('\n## Keys\n'), md.indexOf('\n## ', md.indexOf('\n## Keys\n') + 1));
  const sections = keysSection.split('\n### ').slice(1);
  const documented = sections.map((s) => /^`([^`]+)`/.exec(s)?.[1] ?? `(bad heading: ${s.slice(0, 30)})`);
  diff(documented, KEY_NAMES, 'docs/config.md keys');
  for (const s of sections) {
    for (const field of ['- Type:', '- Default:', '- Example:']) {
      assert.ok(s.includes(field), `docs/config.md ${s.slice(0, s.indexOf('\n'))} has no \`${field}\` line`);
    }
  }
});

void test('docs/errors.md lists every error code, and only codes that exist', () => {
  const md = readFileSync(new URL('errors.md', docs), 'utf8');
  const documented = [...md.matchAll(/^\| `(EMP_[A-Z_]+)` \|/gm)].map((m) => m[1] ?? '');
  diff(documented, Object.keys(ERROR_CODES), 'docs/errors.md codes');
  const mentioned = [...md.matchAll(/EMP_[A-Z_]+/g)].map((m) => m[0]);
  for (const code of mentioned)
    assert.ok(Object.hasOwn(ERROR_CODES, code), `docs/errors.md mentions unknown ${code}`);
});

void test('docs/config.md mentions only codes that exist', () => {
  const md = readFileSync(new URL('config.md', docs), 'utf8');
  for (const [code] of md.matchAll(/EMP_[A-Z_]+/g))
    assert.ok(Object.hasOwn(ERROR_CODES, code), `docs/config.md mentions unknown ${code}`);
});

void test('every EMP_ code used in the sources is in the registry', () => {
  const root = new URL('../', docs);
  const seen = new Set<string>();
  const walk = (dir: URL): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith('.ts'))
        for (const m of readFileSync(new URL(entry.name, dir), 'utf8').matchAll(/\bEMP_[A-Z_]+[A-Z]\b/g))
          seen.add(m[0]);
    }
  };
  for (const pkg of ['config', 'daemon', 'cli', 'vassal', 'native'])
    walk(new URL(`packages/${pkg}/src/`, root));
  assert.ok(seen.size > 40, `the walk found the sources (${seen.size} codes)`);
  const missing = [...seen].filter((code) => !Object.hasOwn(ERROR_CODES, code));
  assert.deepEqual(missing, [], 'codes used but not in packages/config/src/errors.ts');
});
