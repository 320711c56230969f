// The prebuilt addons in prebuilds/ (made by `npm run build:prebuilds`): one per target, of the
// right architecture and libc (read from the ELF headers, no tool needed), built from the sources
// of this checkout, and the one for this machine is what node-gyp-build loads when nothing was
// compiled. Also: the spawn compiles against kernel headers that predate close_range and clone3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from '@emperor/test-support';

const PKG = fileURLToPath(new URL('../..', import.meta.url)); // from dist/test/
const PREBUILDS = join(PKG, 'prebuilds');

const TARGETS = [
  { file: 'linux-x64/@emperor+native.glibc.node', machine: 62, libc: 'glibc' }, // EM_X86_64
  { file: 'linux-arm64/@emperor+native.glibc.node', machine: 183, libc: 'glibc' }, // EM_AARCH64
  { file: 'linux-x64/@emperor+native.musl.node', machine: 62, libc: 'musl' },
] as const;

interface Elf {
  class64: boolean;
  littleEndian: boolean;
  type: number;
  machine: number;
  needed: string[];
  /** Symbol versions required from shared libraries (`GLIBC_2.28`). */
  versions: string[];
}

/** The ELF header, the DT_NEEDED libraries and the needed symbol versions (64-bit little-endian only). */
function readElf(path: string): Elf {
  const b = readFileSync(path);
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${path}: ELF magic`);
  const class64 = b[4] === 2;
  const littleEndian = b[5] === 1;
  const elf = {
    class64,
    littleEndian,
    type: b.readUInt16LE(16),
    machine: b.readUInt16LE(18),
    needed: [],
    versions: [],
  };
  if (!class64 || !littleEndian) return elf;
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      type: b.readUInt32LE(at + 4),
      offset: Number(b.readBigUInt64LE(at + 0x18)),
      size: Number(b.readBigUInt64LE(at + 0x20)),
      link: b.readUInt32LE(at + 0x28),
    };
  };
  const needed: string[] = [];
  const versions: string[] = [];
  const text = (at: number) => b.toString('latin1', at, b.indexOf(0, at));
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type === 0x6ffffffe) {
      // SHT_GNU_verneed: Verneed entries (vn_cnt at +2, vn_aux at +8, vn_next at +12), each with
      // Vernaux entries (vna_name at +8, vna_next at +12).
      const strtab = section(s.link);
      for (let vn = s.offset, more = true; more;) {
        const count = b.readUInt16LE(vn + 2);
        for (let k = 0, aux = vn + b.readUInt32LE(vn + 8); k < count; k++) {
          versions.push(text(strtab.offset + b.readUInt32LE(aux + 8)));
          aux += b.readUInt32LE(aux + 12);
        }
        const next = b.readUInt32LE(vn + 12);
        more = next !== 0;
        vn += next;
      }
      continue;
    }
    if (s.type !== 6) continue; // SHT_DYNAMIC
    const strtab = section(s.link);
    for (let at = s.offset; at < s.offset + s.size; at += 16) {
      const tag = b.readBigUInt64LE(at);
      if (tag === 0n) break; // DT_NULL
      if (tag !== 1n) continue; // DT_NEEDED
      const start = strtab.offset + Number(b.readBigUInt64LE(at + 8));
      needed.push(text(start));
    }
  }
  return { ...elf, needed, versions };
}

for (const t of TARGETS) {
  void test(`prebuilds/${t.file}: a 64-bit shared object for machine ${t.machine}, linked to ${t.libc}`, () => {
    const path = join(PREBUILDS, t.file);
    assert.ok(existsSync(path), `${path} exists (npm run build:prebuilds -w packages/native)`);
    const elf = readElf(path);
    assert.equal(elf.class64, true, 'ELFCLASS64');
    assert.equal(elf.littleEndian, true, 'little-endian');
    assert.equal(elf.type, 3, 'ET_DYN (a shared object)');
    assert.equal(elf.machine, t.machine, 'e_machine');
    // glibc's libc is libc.so.6; musl's (libc.so here, libc.musl-<arch>.so.1 on Alpine) is musl's
    // dynamic loader itself, which answers for any `libc.*` name.
    if (t.libc === 'glibc') {
      assert.ok(elf.needed.includes('libc.so.6'), `needs libc.so.6: ${elf.needed.join(' ')}`);
      // Loads wherever Node 20 runs (its own binaries need glibc 2.28), as packages/native/README.md says.
      const glibc = elf.versions.filter((v) => v.startsWith('GLIBC_'));
      assert.ok(glibc.length > 0, 'versioned glibc symbols found');
      const tooNew = glibc.filter((v) => {
        const [major = 0, minor = 0] = v.slice('GLIBC_'.length).split('.').map(Number);
        return major > 2 || (major === 2 && minor > 28);
      });
      assert.deepEqual(tooNew, [], `needs a glibc newer than 2.28 (all: ${glibc.join(' ')})`);
    } else
      assert.ok(
        elf.needed.length > 0 && elf.needed.every((n) => n.startsWith('libc.') && n !== 'libc.so.6'),
        `needs musl's libc only: ${elf.needed.join(' ')}`,
      );
  });
}

void test('the prebuilt binaries were built from the sources of this checkout', async () => {
  const script = pathToFileURL(join(PKG, 'scripts', 'sources-hash.mjs')).href;
  const { sourcesHash } = (await import(script)) as { sourcesHash: (dir: string) => string };
  const recorded = readFileSync(join(PREBUILDS, 'SOURCES.sha256'), 'utf8').trim();
  assert.equal(
    recorded,
    sourcesHash(PKG),
    'binding.gyp or a C file changed since prebuilds/ was made: run `npm run build:prebuilds -w packages/native` and commit prebuilds/',
  );
});

void test("without a local build, node-gyp-build loads this machine's prebuilt binary, which works", (t) => {
  if (process.arch !== 'x64') {
    t.skip(`no assertion written for ${process.arch}`);
    return;
  }
  const dir = tempDir(t);
  cpSync(PREBUILDS, join(dir, 'prebuilds'), { recursive: true });
  const load = createRequire(import.meta.url)('node-gyp-build') as ((dir: string) => unknown) & {
    path(dir: string): string;
  };
  assert.equal(load.path(dir), join(dir, 'prebuilds', 'linux-x64', '@emperor+native.glibc.node'));
  const addon = load(dir) as { pipe(): [number, number]; closeFd(fd: number): void };
  const fds = addon.pipe();
  assert.equal(fds.length, 2);
  for (const fd of fds) addon.closeFd(fd);
});

void test('emperor_spawn.c compiles with kernel headers older than 5.9 (no SYS_close_range, no SYS_clone3)', (t) => {
  const headers = join(dirname(dirname(process.execPath)), 'include', 'node');
  const unistd = `/usr/include/${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu/asm/unistd_64.h`;
  const cc = spawnSync('cc', ['--version']);
  if (cc.error || !existsSync(join(headers, 'node_api.h')) || !existsSync(unistd)) {
    t.skip(`needs cc, Node's headers in ${headers} and ${unistd}`);
    return;
  }
  // Linux 5.4's syscall table: the numbers from 435 (clone3) on removed.
  const old = readFileSync(unistd, 'utf8')
    .split('\n')
    .filter((line) => !/^#define __NR_\w+ (43[5-9]|4[4-9]\d|[5-9]\d\d)$/.test(line))
    .join('\n');
  assert.notEqual(old, readFileSync(unistd, 'utf8'), 'the filter removed something');
  const dir = tempDir(t);
  mkdirSync(join(dir, 'asm'));
  writeFileSync(join(dir, 'asm', 'unistd_64.h'), old);
  const r = spawnSync(
    'cc',
    ['-fsyntax-only', '-Wall', '-I', dir, '-I', headers, join(PKG, 'emperor_spawn.c')],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
});
