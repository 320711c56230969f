// Fuzz: random bytes and random mutations of the good golden files. Every result must be a
// ParseResult whose issues have a registered code; nothing may throw or hang. The PRNG is
// seeded (FUZZ_SEED=n to vary it), so a failure reproduces.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, formatIssue, KEY_NAMES, parseVassalBytes, type ParseResult } from '../src/index.js';
import { goldenOptions } from './golden-options.js';

const seed = Number(process.env['FUZZ_SEED'] ?? 20261123);
const SLOWEST_INPUT_MS = 5000;

/** mulberry32: small, fast, good enough to explore inputs. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(seed);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const root = fileURLToPath(new URL('../../test/golden/good/', import.meta.url));
const seeds = readdirSync(root)
  .filter((f) => f.endsWith('.ini'))
  .map((f) => readFileSync(root + f));

// Fragments that reach the interesting paths: placeholders, quotes, sections, keys, numbers.
const TOKENS = [
  '%(',
  ')',
  '%(exec)',
  '%(a)',
  '$(HOME)',
  '$(NOPE)',
  '$(constructor)',
  '%(__proto__)',
  '__proto__',
  '$(',
  '%',
  '%%',
  '%n',
  '%x',
  '"',
  "'",
  '\\',
  '=',
  '[vassal]',
  '[',
  ']',
  '\n',
  '\r\n',
  ';',
  '#',
  ':',
  '[::1]:',
  'unix:',
  '-1',
  '*/',
  '\u00e9',
  '\ufeff',
  '\u0000',
  'set-placeholder = a=%(b)\n',
  'set-placeholder = b=%(a)\n',
  ...KEY_NAMES.map((k) => `\n${k} = `),
  '99999999999999999999',
  '0',
  '1.5',
];

function randomBytes(): Uint8Array {
  const len = int(4) === 0 ? int(4096) : int(200);
  const bytes = new Uint8Array(len);
  // Mostly printable ASCII with newlines, sometimes anything: both kinds find different bugs.
  const printable = rand() < 0.7;
  for (let i = 0; i < len; i++) bytes[i] = printable ? (int(20) === 0 ? 10 : 32 + int(95)) : int(256);
  return bytes;
}

function mutate(src: Uint8Array): Uint8Array {
  let s = Buffer.from(src).toString('latin1');
  const rounds = 1 + int(6);
  for (let r = 0; r < rounds; r++) {
    const at = int(s.length + 1);
    switch (int(5)) {
      case 0:
        s = s.slice(0, at) + Buffer.from(pick(TOKENS)).toString('latin1') + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + int(20));
        break;
      case 2:
        s = s.slice(0, at) + String.fromCharCode(int(256)) + s.slice(at + 1);
        break;
      case 3: {
        const from = int(s.length);
        s = s.slice(0, at) + s.slice(from, from + int(80)) + s.slice(at);
        break;
      }
      default: {
        const lines = s.split('\n');
        const i = int(lines.length);
        lines.splice(int(lines.length), 0, lines[i] ?? '');
        s = lines.join('\n');
      }
    }
  }
  return Buffer.from(s, 'latin1');
}

function check(r: ParseResult, input: Uint8Array): void {
  const where = `seed ${seed}, input ${JSON.stringify(Buffer.from(input).toString('latin1').slice(0, 300))}`;
  assert.equal(typeof r.ok, 'boolean', where);
  const issues = r.ok ? r.warnings : [...r.errors, ...r.warnings];
  if (!r.ok) assert.ok(r.errors.length > 0, `a rejection carries at least one error: ${where}`);
  for (const i of issues) {
    assert.ok(Object.hasOwn(ERROR_CODES, i.code), `unregistered code ${i.code}: ${where}`);
    assert.ok(i.line === undefined || (Number.isInteger(i.line) && i.line >= 1), where);
    assert.equal(typeof formatIssue(i), 'string');
  }
  if (r.ok) assert.ok(r.config.argv.length > 0 && Object.isFrozen(r.config), where);
}

void test(`fuzz: random bytes and mutations of good files (seed ${seed})`, () => {
  const started = performance.now();
  let n = 0;
  let ok = 0;
  let slowest = 0;
  for (; n < 12_000 || (n < 20_000 && performance.now() - started < 5000); n++) {
    const input = n % 2 === 0 ? randomBytes() : mutate(pick(seeds));
    const t0 = performance.now();
    let r: ParseResult;
    try {
      r = parseVassalBytes(input, goldenOptions(int(10) === 0 ? 'x y.ini' : 'fuzz.ini'));
    } catch (err) {
      assert.fail(
        `threw ${String(err)}: seed ${seed}, iteration ${n}, input ${JSON.stringify(Buffer.from(input).toString('latin1'))}`,
      );
    }
    slowest = Math.max(slowest, performance.now() - t0);
    check(r, input);
    if (r.ok) ok++;
    // One input taking seconds is a hang (catastrophic backtracking), whatever the load; the
    // whole run's time is not asserted, as a loaded machine stretches it (15 s failed once).
    assert.ok(performance.now() - t0 < SLOWEST_INPUT_MS, `input ${n} took over ${SLOWEST_INPUT_MS} ms`);
  }
  const ms = Math.round(performance.now() - started);
  console.log(
    `# fuzz: ${n} inputs (${ok} valid) in ${ms} ms, slowest ${slowest.toFixed(1)} ms, seed ${seed}`,
  );
  assert.ok(n >= 10_000);
});
