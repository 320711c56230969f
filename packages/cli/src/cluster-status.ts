// `emperor status --cluster --etcd URL`: every emperor's published vassals (PREFIX/status/NODE/NAME,
// docs/fleet.md) in one table, read from etcd; no emperor's control socket is needed.
import type { Output } from './commands/command.js';
import { UsageError } from './fast-command.js';
import { connectEtcd, type EtcdCliValues } from './etcd-connect.js';
import type { PublishedStatus } from '@emperor/daemon/etcd';

export async function clusterStatus(values: EtcdCliValues, json: boolean, output: Output): Promise<number> {
  if (values.etcd === undefined && process.env.EMPEROR_ETCD === undefined)
    throw new UsageError('--cluster needs --etcd etcd://HOST:PORT[,...]/PREFIX');
  const { client, target } = await connectEtcd(values, 'status --cluster');
  const base = `${target.prefix}/status/`;
  const { kvs } = await client.range(base);
  const rows: PublishedStatus[] = [];
  for (const kv of kvs) {
    try {
      rows.push(JSON.parse(kv.value.toString('utf8')) as PublishedStatus);
    } catch {
      // not written by an emperor: skipped
    }
  }
  rows.sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node));
  if (json) {
    output.out(JSON.stringify({ vassals: rows }, null, 2));
    return 0;
  }
  if (rows.length === 0) {
    output.out(`no emperor publishes under ${base}`);
    return 0;
  }
  const header = ['NODE', 'NAME', 'STATE', 'GEN', 'PIDS', 'RESTARTS'];
  const cells = rows.map((r) => [
    r.node,
    r.name,
    r.state,
    r.generation === null ? '-' : String(r.generation),
    r.pids.length > 0 ? r.pids.join(',') : '-',
    String(r.restarts),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((v, c) => v.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd();
  output.out(line(header));
  rows.forEach((r, i) => {
    output.out(line(cells[i] ?? []));
    if (r.error !== null) output.out(`  ${r.error}`);
  });
  const nodes = new Set(rows.map((r) => r.node)).size;
  output.out(`${rows.length} vassals on ${nodes} node${nodes === 1 ? '' : 's'}`);
  return 0;
}
