// What each `--vassals` value names: a directory (or a glob of files in one), or a store by URL.
// A URL is never taken for a relative directory: `etcd://h/p` is not `./etcd:/h/p`.
import { parseWatchTarget, type WatchTarget } from './dir-source.js';
import type { EtcdTarget } from './etcd/etcd-source.js';
import { parseEtcdUrl } from './etcd/url.js';

export type VassalsSpec =
  | { readonly kind: 'dir'; readonly target: WatchTarget }
  | { readonly kind: 'etcd'; readonly target: EtcdTarget };

const URL_LIKE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'EMP_CLI_USAGE' });
}

/** Throws an EMP_CLI_USAGE error naming the value when one is neither a path nor a known URL. */
export function parseVassalsSpec(spec: string): VassalsSpec {
  const scheme = URL_LIKE.exec(spec)?.[1];
  if (scheme === 'etcd') {
    const target = parseEtcdUrl(spec);
    if (typeof target === 'string')
      throw usage(`--vassals ${spec}: ${target}; expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX`);
    return { kind: 'etcd', target };
  }
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
