// `emperor run`: the daemon in the foreground (systemd does the daemonizing).
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cliVersion } from './version.js';
import { resolve } from 'node:path';
import { defaultPaths } from '@emperor/daemon/paths';
import { MIN_OPEN_FILES, readNofileLimit } from '@emperor/daemon/fd-budget';
import type { FastCommand } from '../fast-command.js';
import { failure, isUsageError } from '../failure.js';
import { relaunchWithNodeFlags } from '../node-flags.js';
import { CONTAINMENTS, LOG_LEVELS, readRunConfig, useValue } from '../run-config.js';
import type { CommandModule, Output } from './command.js';

/**
 * `run` without yargs, which would stay in the emperor's memory for its whole life (~6 MB of RSS):
 * the plain forms of the options are read with node:util's parseArgs; anything else (a value list
 * after one `--vassals`, a repeated single option, a bad level, an unknown option) goes to yargs,
 * which reads or explains it as before.
 */
export function parseRunArgs(args: readonly string[]): RunArgs | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        vassals: { type: 'string', multiple: true },
        'log-dir': { type: 'string' },
        control: { type: 'string' },
        'control-group': { type: 'string' },
        metrics: { type: 'string' },
        dashboard: { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        containment: { type: 'string' },
        uwsgi: { type: 'string' },
        'state-dir': { type: 'string' },
        'node-name': { type: 'string' },
        'etcd-cacert': { type: 'string' },
        'etcd-cert': { type: 'string' },
        'etcd-key': { type: 'string' },
        'etcd-user': { type: 'string' },
        'etcd-password-file': { type: 'string' },
        tyrant: { type: 'boolean' },
      },
      allowPositionals: false,
      strict: true,
      tokens: true,
    });
  } catch {
    return undefined;
  }
  const counts = new Map<string, number>();
  for (const t of parsed.tokens) if (t.kind === 'option') counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  for (const [name, n] of counts) if (n > 1 && name !== 'vassals') return undefined;
  const v = parsed.values;
  if (v['log-level'] !== undefined && !LOG_LEVELS.includes(v['log-level'])) return undefined;
  if (v.containment !== undefined && !CONTAINMENTS.includes(v.containment)) return undefined;
  return {
    vassals: v.vassals,
    logDir: v['log-dir'],
    control: v.control ?? process.env.EMPEROR_CONTROL,
    controlGroup: v['control-group'],
    metrics: v.metrics,
    dashboard: v.dashboard,
    config: v.config,
    logLevel: v['log-level'],
    containment: v.containment,
    uwsgi: v.uwsgi,
    stateDir: v['state-dir'],
    nodeName: v['node-name'],
    etcdCacert: v['etcd-cacert'],
    etcdCert: v['etcd-cert'],
    etcdKey: v['etcd-key'],
    etcdUser: v['etcd-user'],
    etcdPasswordFile: v['etcd-password-file'],
    tyrant: v.tyrant,
  };
}

async function fast(args: readonly string[], output: Output): Promise<number> {
  const parsed = parseRunArgs(args);
  if (parsed === undefined) return (await import('../main.js')).withYargs(['run', ...args], output);
  try {
    return await run(parsed);
  } catch (err) {
    output.err(`emperor: ${failure(err)}`);
    if (!isUsageError(err)) return 1;
    output.err('Run `emperor --help` or `emperor COMMAND --help` for usage.');
    return 2;
  }
}

export const runCommand: CommandModule & FastCommand = {
  fast,
  register: (y, describe, ctx) =>
    y.command(
      'run',
      describe,
      (b) => {
        // The defaults of this user (root's differ), so `--help` says what would be watched.
        const paths = defaultPaths();
        return b
          .option('vassals', {
            describe:
              'A directory of NAME.ini files, or a glob of file names inside one directory; repeatable',
            type: 'string',
            array: true,
            defaultDescription: paths.vassals,
          })
          .option('log-dir', {
            describe:
              'The directory of the vassal logs: NAME.log for each vassal, unless its file sets `log`',
            type: 'string',
            defaultDescription: paths.logDir,
          })
          .option('control', {
            describe: 'Control socket path (its directory also holds the state file); $EMPEROR_CONTROL too',
            type: 'string',
            defaultDescription: paths.control,
          })
          .option('control-group', {
            describe:
              'Group given the control socket (mode 0660): its members may use `emperor status` and act',
            type: 'string',
            defaultDescription: "the emperor's own group",
          })
          .option('metrics', {
            describe:
              'Serve Prometheus /metrics on HOST:PORT (a bare port binds 127.0.0.1; readable by anyone who can connect)',
            type: 'string',
            defaultDescription: 'no metrics',
          })
          .option('dashboard', {
            describe:
              'Serve the web dashboard on HOST:PORT too (a bare port binds 127.0.0.1): read-only, actions need the token in dashboard.token beside the control socket (docs/dashboard.md)',
            type: 'string',
            defaultDescription: 'on the control socket only',
          })
          .option('config', {
            describe:
              'An INI file whose keys are these options (`vassals = DIR`, repeatable); the command line wins (docs/cli.md)',
            type: 'string',
            defaultDescription: 'none',
          })
          .option('log-level', {
            describe: 'The emperor log level',
            type: 'string',
            choices: LOG_LEVELS,
            defaultDescription: 'info',
          })
          .option('containment', {
            describe:
              'How every process of a vassal is tracked and stopped: a cgroup per instance where one can be had (auto), always (cgroup: refuse to start without), or never (subreaper)',
            type: 'string',
            choices: CONTAINMENTS,
            defaultDescription: 'auto',
          })
          .option('uwsgi', {
            describe: 'The uWSGI binary that runs `[uwsgi]` vassal files (docs/uwsgi.md)',
            type: 'string',
            defaultDescription: 'uwsgi on PATH',
          })
          .option('state-dir', {
            describe:
              'Where the last set read from each etcd source is cached, for a start while etcd is unreachable',
            type: 'string',
            defaultDescription: paths.stateDir,
          })
          .option('node-name', {
            describe: 'The name `nodes` globs in vassal files are matched against (docs/fleet.md)',
            type: 'string',
            defaultDescription: 'the host name',
          })
          .option('etcd-cacert', {
            describe: "PEM file of the CA that signed the etcd servers' certificates (TLS to etcd)",
            type: 'string',
          })
          .option('etcd-cert', { describe: 'PEM client certificate for etcd', type: 'string' })
          .option('etcd-key', { describe: 'PEM key of --etcd-cert', type: 'string' })
          .option('etcd-user', { describe: 'etcd user (authentication enabled)', type: 'string' })
          .option('etcd-password-file', {
            describe: 'File holding the password of --etcd-user; $EMPEROR_ETCD_PASSWORD too (never on argv)',
            type: 'string',
          })
          .option('tyrant', {
            describe:
              'As root, run each vassal as the owner of its file, with its groups (uWSGI emperor-tyrant; docs/uwsgi.md)',
            type: 'boolean',
          })
          .example('$0 run --vassals /srv/apps --log-dir /var/log/apps', 'Supervise every /srv/apps/*.ini')
          .example(
            '$0 run --vassals etcd://10.0.0.1:2379,10.0.0.2:2379/apps',
            'Run what the fleet defines (docs/fleet.md)',
          )
          .epilogue(
            'Runs in the foreground; SIGTERM/SIGINT stop every vassal, SIGHUP rescans, SIGUSR1 reopens logs.',
          );
      },
      (args) =>
        ctx.run(() =>
          run({
            vassals: args.vassals,
            logDir: args['log-dir'],
            control: args.control ?? process.env.EMPEROR_CONTROL,
            controlGroup: args['control-group'],
            metrics: args.metrics,
            dashboard: args.dashboard,
            config: args.config,
            logLevel: args['log-level'],
            containment: args.containment,
            uwsgi: args.uwsgi,
            stateDir: args['state-dir'],
            nodeName: args['node-name'],
            etcdCacert: args['etcd-cacert'],
            etcdCert: args['etcd-cert'],
            etcdKey: args['etcd-key'],
            etcdUser: args['etcd-user'],
            etcdPasswordFile: args['etcd-password-file'],
            tyrant: args.tyrant,
          }),
        ),
    ),
};

export interface RunArgs {
  readonly vassals: readonly string[] | undefined;
  readonly logDir: string | undefined;
  readonly control: string | undefined;
  readonly controlGroup: string | undefined;
  readonly metrics: string | undefined;
  readonly dashboard: string | undefined;
  readonly config: string | undefined;
  readonly logLevel: string | undefined;
  readonly containment: string | undefined;
  readonly uwsgi: string | undefined;
  readonly stateDir?: string | undefined;
  readonly nodeName?: string | undefined;
  readonly etcdCacert?: string | undefined;
  readonly etcdCert?: string | undefined;
  readonly etcdKey?: string | undefined;
  readonly etcdUser?: string | undefined;
  readonly etcdPasswordFile?: string | undefined;
  readonly tyrant: boolean | undefined;
}

export async function run(args: RunArgs): Promise<number> {
  // Node raised the soft limit to the hard one at start: this is what loading the daemon gets.
  const nofile = readNofileLimit();
  if (nofile < MIN_OPEN_FILES)
    throw Object.assign(
      new Error(
        `its open-file limit is ${nofile}, and it needs at least ${MIN_OPEN_FILES} to start; raise it ` +
          '(`LimitNOFILE=` in its systemd unit, `ulimit -n` in its shell)',
      ),
      { code: 'EMP_FD_LIMIT_TOO_LOW' },
    );
  // Before the daemon's modules load (`emperor` did it already, before stdout was touched): Node
  // restarts with its flags, same pid, and comes back here.
  const relaunchFailure = relaunchWithNodeFlags();
  const {
    startEmperor,
    createLogger,
    openControlServer,
    openMetricsServer,
    openDashboardServer,
    parseListenAddress,
    ensureRuntimeDir,
    parseVassalsSpec,
  } = await import('@emperor/daemon');
  const config = args.config === undefined ? undefined : readRunConfig(args.config);
  const file = config?.single ?? {};
  const paths = defaultPaths();
  const vassals = (args.vassals?.length ? args.vassals : undefined) ?? config?.vassals ?? [paths.vassals];
  // Before anything is created: a URL the emperor cannot read is a usage error, never a directory.
  for (const spec of vassals) parseVassalsSpec(spec);
  const logDir = resolve(args.logDir ?? file['log-dir'] ?? paths.logDir);
  const control = resolve(args.control ?? file.control ?? paths.control);
  const runtimeDir = resolve(control, '..');
  ensureRuntimeDir(runtimeDir);
  mkdirSync(logDir, { recursive: true });
  const logger = createLogger({
    level: args.logLevel ?? file['log-level'] ?? 'info',
  });
  if (relaunchFailure)
    logger.warn(
      { event: 'node-flags-not-applied', code: relaunchFailure.code, err: relaunchFailure.message },
      'node-flags-not-applied',
    );

  const groupName = args.controlGroup ?? file['control-group'];
  // A value from the command line wins; one from the file is reported with its file and line.
  const fromFile = (onLine: string | undefined) => (onLine === undefined ? config : undefined);
  const gid =
    groupName === undefined
      ? undefined
      : await useValue(fromFile(args.controlGroup), 'control-group', () => resolveGroup(groupName));
  if (gid !== undefined) shareDirWithGroup(runtimeDir, gid);
  const metricsAt = args.metrics ?? file.metrics;
  const metricsAddress =
    metricsAt === undefined
      ? undefined
      : useValue(fromFile(args.metrics), 'metrics', () => parseListenAddress(metricsAt));
  const dashboardAt = args.dashboard ?? file.dashboard;
  const dashboardAddress =
    dashboardAt === undefined
      ? undefined
      : useValue(fromFile(args.dashboard), 'dashboard', () => parseListenAddress(dashboardAt, '--dashboard'));

  // The socket first: a second emperor on the same socket is refused before it touches anything.
  const server = await openControlServer({
    path: control,
    ...(gid === undefined ? {} : { gid }),
    logger,
    version: cliVersion(),
    vassalDirs: vassals,
  });
  let metrics: Awaited<ReturnType<typeof openMetricsServer>> | undefined;
  let dashboard: Awaited<ReturnType<typeof openDashboardServer>> | undefined;
  let emperor: Awaited<ReturnType<typeof startEmperor>>;
  try {
    metrics = metricsAddress && (await openMetricsServer(server, metricsAddress.host, metricsAddress.port));
    if (metrics)
      logger.info(
        { event: 'metrics-listening', address: `${metrics.address.address}:${metrics.address.port}` },
        'metrics-listening',
      );
    dashboard =
      dashboardAddress &&
      (await openDashboardServer(server, {
        ...dashboardAddress,
        runtimeDir,
        ...(gid === undefined ? {} : { gid }),
      }));
    if (dashboard)
      logger.info(
        {
          event: 'dashboard-listening',
          address: `${dashboard.address.address}:${dashboard.address.port}`,
          token_file: dashboard.tokenFile,
        },
        'dashboard-listening',
      );
    const { getentLookup } = await import('../system-lookup.js');
    const containment = (args.containment ?? file.containment ?? 'auto') as 'auto' | 'cgroup' | 'subreaper';
    const uwsgi = args.uwsgi ?? file.uwsgi;
    const etcd = etcdSettings(args, file);
    const nodeName = args.nodeName ?? file['node-name'];
    const tyrantText = file.tyrant;
    const tyrant =
      args.tyrant ??
      (tyrantText === undefined
        ? false
        : useValue(config, 'tyrant', () => {
            if (/^(true|yes|on|1)$/i.test(tyrantText)) return true;
            if (/^(false|no|off|0)$/i.test(tyrantText)) return false;
            throw new Error(`--tyrant: expects true or false, not \`${tyrantText}\``);
          }));
    emperor = await startEmperor({
      stateDir: resolve(args.stateDir ?? file['state-dir'] ?? paths.stateDir),
      ...(nodeName === undefined ? {} : { nodeName }),
      ...(etcd ? { etcd } : {}),
      vassals,
      logDir,
      runtimeDir,
      logger,
      lookup: getentLookup(),
      containment,
      ...(uwsgi === undefined ? {} : { uwsgi }),
      tyrant,
    });
  } catch (err) {
    await Promise.allSettled([server.close(), metrics?.close(), dashboard?.close()]);
    throw err;
  }
  server.attach(emperor);
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled([server.close(), metrics?.close(), dashboard?.close()]);
    await emperor.close();
  };
  const code = await new Promise<number>((done) => {
    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        // A second signal: no more grace.
        logger.warn({ event: 'emperor-kill', signal }, 'emperor-kill');
        emperor.killAll();
        void server.close();
        done(1);
        return;
      }
      logger.info({ event: 'emperor-stopping', signal }, 'emperor-stopping');
      closeAll().then(
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
    // Dying would take every vassal with it (their parent-death signal): a stray exception from a
    // callback is logged and the emperor carries on, as it does for one vassal's handling.
    process.on('uncaughtException', (err) => {
      logger.error({ event: 'internal-error', err }, 'internal-error');
    });
    process.on('unhandledRejection', (err) => {
      logger.error({ event: 'internal-error', err }, 'internal-error');
    });
    process.on('SIGHUP', () => {
      logger.info({ event: 'rescan' }, 'rescan');
      void emperor.rescan();
    });
    process.on('SIGUSR1', () => {
      logger.info({ event: 'reopen-logs' }, 'reopen-logs');
      emperor.reopenLogs();
    });
  });
  // Every vassal is stopped and everything closed, but a process that left a vassal's process
  // group (`setsid`, a daemonized helper) may still hold the write ends of its output pipes: our
  // read ends see no EOF and would keep the event loop, and the emperor, alive for as long as it
  // lives. Nothing is left to do: exit as soon as the log is written.
  await new Promise<void>((resolve) => {
    logger.flush(() => {
      resolve();
    });
  });
  process.exit(code);
}

/** A group name or number to a gid, through NSS (`getent group`). */
async function resolveGroup(name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const { getentLookup } = await import('../system-lookup.js');
  const found = getentLookup().group(name);
  if (!found) throw new Error(`--control-group: no group \`${name}\` (getent group ${name} finds nothing)`);
  return found.gid;
}

/** Group members must be able to reach the socket: the directory gets the group and mode 0710. */
function shareDirWithGroup(dir: string, gid: number): void {
  const st = statSync(dir);
  if (st.uid !== process.getuid?.()) return; // not ours: its owner decides
  chownSync(dir, -1, gid);
  chmodSync(dir, (st.mode & 0o777) | 0o010);
}

/** `--etcd-*` options: files are read by the daemon; the password comes from a file or the environment, never argv. */
function etcdSettings(
  args: RunArgs,
  file: Partial<Record<string, string>>,
): Record<string, string> | undefined {
  const settings: Record<string, string> = {};
  const pick = (key: string, value: string | undefined): void => {
    if (value !== undefined) settings[key] = resolve(value);
  };
  pick('cacert', args.etcdCacert ?? file['etcd-cacert']);
  pick('cert', args.etcdCert ?? file['etcd-cert']);
  pick('key', args.etcdKey ?? file['etcd-key']);
  const user = args.etcdUser ?? file['etcd-user'];
  if (user !== undefined) {
    settings.user = user;
    const passwordFile = args.etcdPasswordFile ?? file['etcd-password-file'];
    const password =
      passwordFile === undefined ? process.env.EMPEROR_ETCD_PASSWORD : readPassword(passwordFile);
    if (password === undefined)
      throw Object.assign(
        new Error('--etcd-user needs a password: --etcd-password-file FILE or $EMPEROR_ETCD_PASSWORD'),
        { code: 'EMP_CLI_USAGE' },
      );
    settings.password = password;
  }
  return Object.keys(settings).length > 0 ? settings : undefined;
}

function readPassword(path: string): string {
  try {
    // One line: a trailing newline (`echo pw > file`) is no part of the password.
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw Object.assign(new Error(`--etcd-password-file ${path}: ${(err as Error).message}`), {
      code: 'EMP_CLI_USAGE',
    });
  }
}
