// `emperor run`: the daemon in the foreground (systemd does the daemonizing).
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from './command.js';

export const runCommand: CommandModule = {
  register: (y, describe, ctx) =>
    y.command(
      'run',
      describe,
      (b) =>
        b
          .option('vassals', {
            describe:
              'A directory of NAME.ini files, or a glob of file names inside one directory; repeatable',
            type: 'string',
            array: true,
          })
          .option('log-dir', {
            describe: 'Where vassal logs go (default <log-dir>/NAME.log)',
            type: 'string',
          })
          .option('control', {
            describe: 'Control socket path (its directory also holds the state file)',
            type: 'string',
          })
          .option('config', { describe: 'An INI file whose keys are these options', type: 'string' })
          .option('log-level', {
            describe: 'The emperor log level',
            type: 'string',
            choices: ['debug', 'info', 'warn', 'error'],
          })
          .example('$0 run --vassals /srv/apps --log-dir /var/log/apps', 'Supervise every /srv/apps/*.ini')
          .epilogue(
            'Runs in the foreground; SIGTERM/SIGINT stop every vassal, SIGHUP rescans, SIGUSR1 reopens logs.',
          ),
      (args) =>
        ctx.run(() =>
          run({
            vassals: args.vassals,
            logDir: args['log-dir'],
            control: args.control ?? process.env.EMPEROR_CONTROL,
            config: args.config,
            logLevel: args['log-level'],
          }),
        ),
    ),
};

export interface RunArgs {
  readonly vassals: readonly string[] | undefined;
  readonly logDir: string | undefined;
  readonly control: string | undefined;
  readonly config: string | undefined;
  readonly logLevel: string | undefined;
}

/** Keys of the `--config` INI file: the long option names. */
const CONFIG_KEYS = ['vassals', 'log-dir', 'control', 'log-level'] as const;

async function readConfigFile(
  path: string,
): Promise<Partial<Record<(typeof CONFIG_KEYS)[number], string | string[]>>> {
  const { parse } = await import('ini');
  const parsed = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const out: Partial<Record<(typeof CONFIG_KEYS)[number], string | string[]>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new Error(`${path}: unknown key \`${key}\`; valid keys are ${CONFIG_KEYS.join(', ')}`);
    }
    if (typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
      out[key as (typeof CONFIG_KEYS)[number]] = value;
    } else {
      throw new Error(`${path}: \`${key}\` must be a string`);
    }
  }
  return out;
}

export async function run(args: RunArgs): Promise<number> {
  const { startEmperor, createLogger, defaultPaths } = await import('@emperor/daemon');
  const file = args.config ? await readConfigFile(args.config) : {};
  const paths = defaultPaths();
  const list = (v: string | string[] | undefined): string[] | undefined =>
    v === undefined ? undefined : [v].flat();
  const vassals = (args.vassals?.length ? args.vassals : undefined) ?? list(file.vassals) ?? [paths.vassals];
  const logDir = resolve(args.logDir ?? (file['log-dir'] as string | undefined) ?? paths.logDir);
  const control = resolve(args.control ?? (file.control as string | undefined) ?? paths.control);
  const runtimeDir = resolve(control, '..');
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  mkdirSync(logDir, { recursive: true });
  const logger = createLogger({
    level: args.logLevel ?? (file['log-level'] as string | undefined) ?? 'info',
  });

  const emperor = await startEmperor({ vassals, logDir, runtimeDir, logger });
  return new Promise<number>((done) => {
    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        // A second signal: no more grace.
        logger.warn({ event: 'emperor-kill', signal }, 'emperor-kill');
        emperor.killAll();
        done(1);
        return;
      }
      logger.info({ event: 'emperor-stopping', signal }, 'emperor-stopping');
      emperor.close().then(
        () => {
          done(0);
        },
        (err: unknown) => {
          logger.error({ event: 'emperor-stop-error', err }, 'emperor-stop-error');
          done(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      logger.info({ event: 'rescan' }, 'rescan');
      void emperor.rescan();
    });
    process.on('SIGUSR1', () => {
      logger.info({ event: 'reopen-logs' }, 'reopen-logs');
      emperor.reopenLogs();
    });
  });
}
