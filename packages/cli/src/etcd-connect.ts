// How the CLI reaches a fleet's etcd (`status --cluster`, `fleet put|rm|ls`): the URL and the same
// TLS and login options as `emperor run`, each with an environment variable for scripts. Files are
// read here; the password never comes from argv.
import { readFileSync } from 'node:fs';
import type { EtcdClient, EtcdUrl } from '@emperor/daemon/etcd';
import type { Options } from './fast-command.js';
import { UsageError } from './fast-command.js';

/** The values of ETCD_OPTIONS as parsed (yargs or the fast parser). */
export interface EtcdCliValues {
  readonly etcd?: string | undefined;
  readonly 'etcd-cacert'?: string | undefined;
  readonly 'etcd-cert'?: string | undefined;
  readonly 'etcd-key'?: string | undefined;
  readonly 'etcd-user'?: string | undefined;
  readonly 'etcd-password-file'?: string | undefined;
}

/** Each option, and the variable that stands in for it when it is not given. */
const ENV: Readonly<Record<keyof EtcdCliValues, string>> = {
  etcd: 'EMPEROR_ETCD',
  'etcd-cacert': 'EMPEROR_ETCD_CACERT',
  'etcd-cert': 'EMPEROR_ETCD_CERT',
  'etcd-key': 'EMPEROR_ETCD_KEY',
  'etcd-user': 'EMPEROR_ETCD_USER',
  'etcd-password-file': 'EMPEROR_ETCD_PASSWORD_FILE',
};

export const ETCD_OPTIONS: Options = {
  etcd: { type: 'string', describe: 'etcd://HOST:PORT[,...]/PREFIX of the fleet ($EMPEROR_ETCD)' },
  'etcd-cacert': {
    type: 'string',
    describe: "PEM CA that signed the etcd servers' certificates: talk HTTPS ($EMPEROR_ETCD_CACERT)",
  },
  'etcd-cert': { type: 'string', describe: 'PEM client certificate for etcd ($EMPEROR_ETCD_CERT)' },
  'etcd-key': { type: 'string', describe: 'PEM key of --etcd-cert ($EMPEROR_ETCD_KEY)' },
  'etcd-user': { type: 'string', describe: 'etcd user, when authentication is on ($EMPEROR_ETCD_USER)' },
  'etcd-password-file': {
    type: 'string',
    describe: 'File holding the password of --etcd-user; $EMPEROR_ETCD_PASSWORD too (never on argv)',
  },
};

export interface EtcdConnection {
  readonly client: EtcdClient;
  readonly target: EtcdUrl;
}

export async function connectEtcd(values: EtcdCliValues, command: string): Promise<EtcdConnection> {
  const get = (k: keyof EtcdCliValues): string | undefined => values[k] ?? process.env[ENV[k]];
  const url = get('etcd');
  if (url === undefined)
    throw new UsageError(`${command} needs --etcd etcd://HOST:PORT[,...]/PREFIX (or $EMPEROR_ETCD)`);
  const { EtcdClient, parseEtcdUrl } = await import('@emperor/daemon/etcd');
  const target = parseEtcdUrl(url);
  if (typeof target === 'string') throw new UsageError(`--etcd ${url}: ${target}`);
  const read = (k: keyof EtcdCliValues): Buffer | undefined => {
    const path = get(k);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`--${k} ${path}: ${(err as Error).message}`);
    }
  };
  const ca = read('etcd-cacert');
  const cert = read('etcd-cert');
  const key = read('etcd-key');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--etcd-cert and --etcd-key go together: the certificate and its key');
  const user = get('etcd-user');
  let password = process.env.EMPEROR_ETCD_PASSWORD;
  const passwordFile = get('etcd-password-file');
  if (passwordFile !== undefined) {
    try {
      // One line: a trailing newline (`echo pw > file`) is no part of the password.
      password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`--etcd-password-file ${passwordFile}: ${(err as Error).message}`);
    }
  }
  const tls =
    (ca ?? cert ?? key)
      ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }
      : undefined;
  const client = new EtcdClient({
    endpoints: target.endpoints,
    ...(tls ? { tls } : {}),
    ...(user === undefined ? {} : { auth: { user, password: password ?? '' } }),
  });
  return { client, target };
}
