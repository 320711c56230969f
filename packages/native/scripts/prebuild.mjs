#!/usr/bin/env node
// Builds the prebuilt addons shipped in prebuilds/ (committed: docs/architecture.md, "Packaging")
// for every target this Debian machine can compile for, with prebuildify --napi (one binary per
// target serves every Node >= 20.19), then records the hash of the sources they were built from
// in prebuilds/SOURCES.sha256, which a test compares with the sources of the checkout.
//
//   npm run build:prebuilds -w packages/native
//
// (through npm, which puts its node-gyp on PATH and passes its `nodedir`, so nothing is downloaded).

// Needs gcc, gcc-aarch64-linux-gnu and musl-tools (apt-get install gcc-aarch64-linux-gnu
// musl-tools), and Node's headers (npm's `nodedir`, /usr/include/node on Debian).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourcesHash } from './sources-hash.mjs';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
const PREBUILDIFY = join(PKG, 'node_modules', '.bin', 'prebuildify');
const BIN = existsSync(PREBUILDIFY)
  ? PREBUILDIFY
  : join(PKG, '..', '..', 'node_modules', '.bin', 'prebuildify');

/** Each target: prebuildify's arch and libc, and the toolchain that compiles and strips for it. */
const TARGETS = [
  { arch: 'x64', libc: 'glibc', cc: 'gcc', strip: 'strip', apt: 'gcc' },
  {
    arch: 'arm64',
    libc: 'glibc',
    cc: 'aarch64-linux-gnu-gcc',
    strip: 'aarch64-linux-gnu-strip',
    apt: 'gcc-aarch64-linux-gnu',
  },
  // musl-gcc wraps the host gcc with musl's headers and libc: x64 only.
  { arch: 'x64', libc: 'musl', cc: 'musl-gcc', strip: 'strip', apt: 'musl-tools' },
];

if (spawnSync('node-gyp', ['--version']).error) {
  console.error('prebuild: no node-gyp on PATH: run it as `npm run build:prebuilds -w packages/native`');
  process.exit(1);
}
const missing = TARGETS.filter((t) => spawnSync(t.cc, ['--version']).error);
if (missing.length > 0) {
  console.error(`prebuild: missing compilers: ${missing.map((t) => t.cc).join(', ')}`);
  console.error(`  apt-get install ${[...new Set(missing.map((t) => t.apt))].join(' ')}`);
  process.exit(1);
}

// prebuildify builds in the package's own build/ (node-gyp rebuild): the developer's build is
// moved aside and put back, so this script never leaves a cross-compiled build/Release behind.
const out = mkdtempSync(join(tmpdir(), 'emperor-prebuild-'));
const build = join(PKG, 'build');
const keptBuild = join(out, 'build-kept');
if (existsSync(build)) renameSync(build, keptBuild);
try {
  for (const t of TARGETS) {
    console.log(`prebuild: linux-${t.arch} ${t.libc} with ${t.cc}`);
    const r = spawnSync(
      BIN,
      // --target: the running Node's headers (npm's nodedir), not the newest Node prebuildify knows.
      [
        '--napi',
        '--strip',
        '--tag-libc',
        '--target',
        `node@${process.versions.node}`,
        '--arch',
        t.arch,
        '--out',
        out,
      ],
      {
        cwd: PKG,
        stdio: 'inherit',
        env: {
          ...process.env,
          CC: t.cc,
          // node-gyp links a C addon with $CXX: the same driver, so musl-gcc's libc is the one linked.
          CXX: t.cc,
          LINK: t.cc,
          PREBUILD_LIBC: t.libc,
          PREBUILD_STRIP_BIN: t.strip,
        },
      },
    );
    if (r.status !== 0)
      throw new Error(`prebuildify for linux-${t.arch} ${t.libc} failed (exit ${r.status})`);
    rmSync(build, { recursive: true, force: true });
  }
  const target = join(PKG, 'prebuilds');
  rmSync(target, { recursive: true, force: true });
  renameSync(join(out, 'prebuilds'), target);
  writeFileSync(join(target, 'SOURCES.sha256'), `${sourcesHash(PKG)}\n`);
  for (const dir of readdirSync(target, { withFileTypes: true }).filter((d) => d.isDirectory()))
    for (const file of readdirSync(join(target, dir.name)))
      console.log(`prebuild: prebuilds/${dir.name}/${file}`);
} finally {
  rmSync(build, { recursive: true, force: true });
  if (existsSync(keptBuild)) renameSync(keptBuild, build);
  rmSync(out, { recursive: true, force: true });
}
