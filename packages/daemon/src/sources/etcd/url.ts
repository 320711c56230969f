// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`: the endpoints of one cluster and a key prefix, for
// `run --vassals` and `status --cluster --etcd` alike. Kept free of imports: the CLI loads it.

export interface EtcdUrl {
  readonly spec: string;
  readonly endpoints: readonly { readonly host: string; readonly port: number }[];
  /** The key prefix, the URL's path as written (`/apps`), without a trailing `/`. */
  readonly prefix: string;
}

const ETCD_DEFAULT_PORT = 2379;

/** The URL read, or why it is not one. */
export function parseEtcdUrl(spec: string): EtcdUrl | string {
  if (!spec.startsWith('etcd://')) return 'not an etcd:// URL';
  const rest = spec.slice('etcd://'.length);
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash)).replace(/\/+$/, '');
  if (hosts.includes('@'))
    return 'no credentials in the URL (they would show in `ps`): use --etcd-user and --etcd-password-file';
  if (/[?#]/.test(prefix)) return 'a prefix has no query nor fragment';
  if (hosts === '') return 'no endpoint';
  const endpoints = [];
  for (const h of hosts.split(',')) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(h);
    const port = m?.[2] === undefined ? ETCD_DEFAULT_PORT : Number(m[2]);
    if (!m?.[1] || port < 1 || port > 65535) return `\`${h}\` is not HOST:PORT`;
    endpoints.push({ host: m[1].replace(/^\[|\]$/g, ''), port });
  }
  return { spec, endpoints, prefix };
}
