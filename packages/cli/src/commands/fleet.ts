// `emperor fleet put FILE... | rm NAME... | ls --etcd URL`: what a fleet defines, written to etcd
// only once valid (docs/fleet.md). A file is read as the emperors will read its key: no file
// behind it (relative paths mean `/`), its errors named by the key; then the cross-vassal checks
// of `emperor check` over the files given. One error and nothing is written.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import {
  crossVassalIssues,
  formatIssue,
  parseVassalBytes,
  vassalNameOf,
  type ConfigIssue,
  type VassalConfig,
} from '@emperor/config';
import { getentLookup } from '../system-lookup.js';
import { ETCD_OPTIONS, connectEtcd, type EtcdCliValues } from '../etcd-connect.js';
import type { CommandModule, Output } from './command.js';

async function connect(values: EtcdCliValues) {
  const { client, target } = await connectEtcd(values, 'fleet');
  const hosts = target.endpoints.map((e) => `${e.host}:${e.port}`).join(',');
  const base = `${target.prefix}/vassals/`;
  return { client, base, origin: (key: string) => `etcd://${hosts}${key.startsWith('/') ? '' : '/'}${key}` };
}

export async function fleetPut(
  url: EtcdCliValues,
  files: readonly string[],
  output: Output,
): Promise<number> {
  const { client, base, origin } = await connect(url);
  const options = { env: process.env, cpus: availableParallelism(), lookup: getentLookup() };
  const errors: ConfigIssue[] = [];
  const checked: { name: string; file: string; config: VassalConfig | undefined; bytes: Buffer }[] = [];
  for (const file of files) {
    const name = vassalNameOf(basename(file));
    if (name === undefined) {
      errors.push({
        code: 'EMP_CONFIG_FILE_NAME',
        severity: 'error',
        file,
        line: undefined,
        key: undefined,
        message: 'a vassal file is named `NAME.ini`; NAME becomes the key PREFIX/vassals/NAME',
      });
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      errors.push({
        code: 'EMP_CONFIG_FILE_UNREADABLE',
        severity: 'error',
        file,
        line: undefined,
        key: undefined,
        message: (err as Error).message,
      });
      continue;
    }
    const key = origin(base + name);
    const r = parseVassalBytes(bytes, { ...options, file: key, origin: { name, dir: '/' } });
    // Named by the file the user gave, since that is what they will edit.
    const shown = (i: ConfigIssue): ConfigIssue => ({ ...i, file: `${file} (as ${key})` });
    if (!r.ok)
      for (const e of r.errors) {
        // `$(NAME)` is the environment of each emperor, not of this shell: known only there.
        if (e.code !== 'EMP_CONFIG_UNSET_ENV') errors.push(shown(e));
        else {
          const name = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/.exec(e.message)?.[1] ?? '?';
          output.err(
            formatIssue(
              shown({
                ...e,
                severity: 'warning',
                message: `\`$(${name})\` is not set here: each emperor expands it from its own environment, and one where it is unset shows this key's error in its status`,
              }),
            ),
          );
        }
      }
    for (const w of r.warnings) output.err(formatIssue(shown(w)));
    checked.push({ name, file, config: r.ok ? r.config : undefined, bytes });
  }
  errors.push(...crossVassalIssues(checked.map((c) => ({ ...c, mtimeMs: undefined }))));
  if (errors.length > 0) {
    for (const e of errors) output.err(formatIssue(e));
    output.err(
      `emperor: ${errors.length} error${errors.length === 1 ? '' : 's'}: nothing written [EMP_CONFIG_INVALID]`,
    );
    return 1;
  }
  for (const c of checked) {
    await client.put(base + c.name, c.bytes);
    output.out(`${c.file}: put ${base}${c.name}`);
  }
  return 0;
}

export async function fleetRm(url: EtcdCliValues, names: readonly string[], output: Output): Promise<number> {
  const { client, base } = await connect(url);
  let missing = 0;
  for (const name of names) {
    if (await client.delete(base + name)) output.out(`deleted ${base}${name}`);
    else {
      output.err(`emperor: no vassal ${name} under ${base}`);
      missing++;
    }
  }
  return missing > 0 ? 1 : 0;
}

export async function fleetLs(url: EtcdCliValues, json: boolean, output: Output): Promise<number> {
  const { client, base } = await connect(url);
  const { kvs } = await client.range(base);
  const rows = kvs.map((kv) => ({
    name: kv.key.slice(base.length),
    key: kv.key,
    mod_revision: Number(kv.modRevision),
  }));
  if (json) output.out(JSON.stringify({ vassals: rows }, null, 2));
  else for (const r of rows) output.out(`${r.name}  (revision ${r.mod_revision})`);
  return 0;
}

export const fleetCommand: CommandModule = {
  register: (y, describe, ctx) =>
    y.command('fleet', describe, (b) =>
      b
        .options(
          Object.fromEntries(
            Object.entries(ETCD_OPTIONS).map(([k, o]) => [k, { type: o.type, describe: o.describe }]),
          ),
        )
        .command(
          'put <files..>',
          'Check vassal files as the emperors will read them from etcd, then write each to PREFIX/vassals/NAME',
          (c) => c.positional('files', { type: 'string', array: true }),
          (args) => ctx.run(() => fleetPut(args as EtcdCliValues, args.files ?? [], ctx.output)),
        )
        .command(
          'rm <names..>',
          'Delete PREFIX/vassals/NAME: every emperor stops the vassal',
          (c) => c.positional('names', { type: 'string', array: true }),
          (args) => ctx.run(() => fleetRm(args as EtcdCliValues, args.names ?? [], ctx.output)),
        )
        .command(
          'ls',
          'List the vassals the fleet defines',
          (c) => c.option('json', { type: 'boolean', default: false, describe: 'Print JSON' }),
          (args) => ctx.run(() => fleetLs(args as EtcdCliValues, args.json, ctx.output)),
        )
        .demandCommand(1, 'fleet needs put, rm or ls')
        .example('$0 fleet put shop.ini --etcd etcd://10.0.0.1:2379/apps', 'Deploy shop to the fleet')
        .epilogue('Nothing is written when a file has an error (exit 1). docs/fleet.md'),
    ),
};
