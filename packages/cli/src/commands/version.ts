// `emperor version`: the CLI's version, and the daemon's when one answers (never an error if not).
import { readFileSync } from 'node:fs';
import { call, controlPath } from '../control-client.js';
import { CONTROL_OPTION, parseFast, type FastCommand, type Options } from '../fast-command.js';
import { report } from '../daemon-command.js';
import type { CommandModule, Output } from './command.js';

const OPTIONS: Options = { ...CONTROL_OPTION, json: { type: 'boolean', describe: 'Print JSON' } };
const CONTROL_HELP = CONTROL_OPTION.control?.describe ?? 'Control socket path';

export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

async function fast(args: readonly string[], output: Output): Promise<number> {
  try {
    const { values } = parseFast(args, OPTIONS, { min: 0, max: 0, what: '' });
    const socket = controlPath(values.control);
    const daemon = await call<{ version: string; pid: number }>(socket, '/v1/version').catch(() => undefined);
    if (values.json === true) {
      output.out(JSON.stringify({ cli: cliVersion(), node: process.version, daemon: daemon ?? null }));
    } else {
      output.out(`emperor ${cliVersion()} (node ${process.version})`);
      output.out(
        daemon
          ? `daemon  ${daemon.version} (pid ${daemon.pid}, ${socket})`
          : `daemon  not reachable at ${socket}`,
      );
    }
    return 0;
  } catch (err) {
    return report(err, output);
  }
}

export const versionCommand: CommandModule & FastCommand = {
  fast,
  register: (y, describe, ctx) =>
    y.command(
      'version',
      describe,
      (b) =>
        b.option('json', { type: 'boolean', describe: 'Print JSON' }).option('control', {
          type: 'string',
          describe: CONTROL_HELP,
          defaultDescription: CONTROL_OPTION.control?.default?.(),
        }),
      (args) =>
        ctx.run(() =>
          fast(
            [
              ...(args.json ? ['--json'] : []),
              ...(typeof args.control === 'string' ? ['--control', args.control] : []),
            ],
            ctx.output,
          ),
        ),
    ),
};
