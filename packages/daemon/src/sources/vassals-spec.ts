// What each `--vassals` value names: a directory (or a glob of files in one), or a store by URL.
// A URL is never taken for a relative directory: `etcd://h/p` is not `./etcd:/h/p`.
import { parseWatchTarget, type WatchTarget } from './dir-source.js';
import type { EtcdTarget } from './etcd/etcd-source.js';

export type VassalsSpec =
  | { readonly kind: 'dir'; readonly target: WatchTarget }
  | { readonly kind: 'etcd'; readonly target: EtcdTarget };

const ETCD_DEFAULT_PORT = 2379;

const URL_LIKE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'EMP_CLI_USAGE' });
}

/** Throws an EMP_CLI_USAGE error naming the value when one is neither a path nor a known URL. */
export function parseVassalsSpec(spec: string): VassalsSpec {
  const scheme = URL_LIKE.exec(spec)?.[1];
  if (scheme === 'etcd') return { kind: 'etcd', target: parseEtcd(spec) };
  if (scheme !== undefined)
    throw usage(
      `--vassals ${spec}: unknown scheme \`${scheme}://\`; give a directory, a glob of files or etcd://HOST:PORT/PREFIX (write ./${spec} for a directory of that name)`,
    );
  try {
    return { kind: 'dir', target: parseWatchTarget(spec) };
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`: the endpoints of one cluster and a key prefix. */
function parseEtcd(spec: string): EtcdTarget {
  const rest = spec.slice('etcd://'.length);
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash)).replace(/\/+$/, '');
  const bad = (why: string): Error =>
    usage(`--vassals ${spec}: ${why}; expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX`);
  if (hosts.includes('@'))
    throw bad(
      'no credentials in the URL (they would show in `ps`): use --etcd-user and --etcd-password-file',
    );
  if (/[?#]/.test(prefix)) throw bad('a prefix has no query nor fragment');
  if (hosts === '') throw bad('no endpoint');
  const endpoints = hosts.split(',').map((h) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(h);
    const port = m?.[2] === undefined ? ETCD_DEFAULT_PORT : Number(m[2]);
    if (!m?.[1] || port < 1 || port > 65535) throw bad(`\`${h}\` is not HOST:PORT`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
  return { spec, endpoints, prefix };
}
