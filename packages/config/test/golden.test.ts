// Golden files: each good/*.ini maps to its normalized .json (config and warnings), each
// bad/*.ini to its exact error lines in .expected. UPDATE_GOLDEN=1 rewrites the expectations
// (review the diff before committing it).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssue, parseVassalBytes, type ConfigIssue } from '../src/index.js';
import { goldenOptions } from './golden-options.js';

// Golden files are not compiled: read them from the source tree, next to this test's source.
const root = fileURLToPath(new URL('../../test/golden/', import.meta.url));
const update = process.env['UPDATE_GOLDEN'] === '1';

function lines(issues: readonly ConfigIssue[]): string[] {
  return issues.map((i) => formatIssue({ ...i, file: i.file.replace(/^.*\//, '') }));
}

function inis(dir: string): string[] {
  return readdirSync(root + dir)
    .filter((f) => f.endsWith('.ini'))
    .sort();
}

function compare(path: string, actual: string): void {
  if (update) writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'));
}

for (const name of inis('good')) {
  void test(`good/${name}`, () => {
    const r = parseVassalBytes(readFileSync(`${root}good/${name}`), goldenOptions(name));
    assert.ok(r.ok, `expected ${name} to be valid, got:\n${r.ok ? '' : lines(r.errors).join('\n')}`);
    assert.ok(Object.isFrozen(r.config) && Object.isFrozen(r.config.argv), 'the config is frozen');
    const json = JSON.stringify(
      { config: r.config, warnings: lines(r.warnings) },
      (_k, v: unknown) => (v === undefined ? null : v),
      2,
    );
    compare(`${root}good/${name.replace(/\.ini$/, '.json')}`, `${json}\n`);
  });
}

const bad = inis('bad');
void test('at least 40 bad golden files', () => {
  assert.ok(bad.length >= 40, `only ${bad.length} bad golden files`);
});

for (const name of bad) {
  void test(`bad/${name}`, () => {
    const r = parseVassalBytes(readFileSync(`${root}bad/${name}`), goldenOptions(name));
    assert.ok(!r.ok, `expected ${name} to be rejected`);
    const actual = [...lines(r.errors), ...lines(r.warnings)].join('\n') + '\n';
    compare(`${root}bad/${name.replace(/\.ini$/, '.expected')}`, actual);
  });
}
