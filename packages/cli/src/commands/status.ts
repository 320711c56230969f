// `emperor status [NAME|GLOB] [--json] [--check]`: what runs, and what is broken and why; with
// --check, the exit code says whether all is well (monitoring, scripts).
// Loads no daemon or config code: a request on the socket and a table (SPEC §8.8).
import type { StatusSnapshot } from '@emperor/daemon';
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { formatTable } from '../status-table.js';
import { ETCD_OPTIONS } from '../etcd-connect.js';

export const statusCommand = daemonCommand({
  usage: 'status [name]',
  positional: 'name',
  positionals: { min: 0, max: 1, what: 'vassal name' },
  options: {
    json: { type: 'boolean', describe: 'Print JSON in a stable schema (docs/protocol.md)' },
    names: {
      type: 'boolean',
      describe: 'Print only the vassal names, one per line (for scripts and completion)',
    },
    cluster: {
      type: 'boolean',
      describe: 'Every emperor of a fleet, as each publishes in etcd (with --etcd; docs/fleet.md)',
    },
    ...ETCD_OPTIONS,
    check: {
      type: 'boolean',
      describe: 'Exit 1 when a vassal shown is failed, in backoff or has a config error (for monitoring)',
    },
  },
  examples: [
    ['$0 status', 'Every vassal: state, pids, uptime, restarts, CPU, memory, sockets'],
    ["$0 status 'shop*' --json", 'The shop vassals as JSON'],
    ['$0 status --cluster --etcd etcd://10.0.0.1:2379/apps', 'Every vassal of every emperor of the fleet'],
    ['$0 status --check > /dev/null || alert', 'Is everything healthy?'],
  ],
  epilogue:
    'Exit codes: 0 shown, 1 no such vassal (or, with --check, a vassal failed, in backoff or with a config error), 3 the emperor is not reachable.',
  run: async (args, socket, output) => {
    if (args.values.cluster === true)
      return (await import('../cluster-status.js')).clusterStatus(
        args.values,
        args.values.json === true,
        output,
      );
    const name = args.positionals[0];
    const target = name === undefined ? '/v1/status' : `/v1/status?name=${encodeURIComponent(name)}`;
    const snapshot = await call<StatusSnapshot>(socket, target);
    if (args.values.json === true) {
      output.out(JSON.stringify(snapshot, null, 2));
    } else if (args.values.names === true) {
      for (const v of snapshot.vassals) output.out(v.name);
    } else {
      const tty = process.stdout.isTTY;
      const color = tty && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
      const width = tty ? Math.max(80, process.stdout.columns) : 80;
      for (const line of formatTable(snapshot, { color, width: tty ? width : 80, now: Date.now() }))
        output.out(line);
    }
    if (args.values.check !== true) return 0;
    // A reason on a vassal that serves means the file's own version could not start (a refused
    // or abandoned reload): an older version runs, which a deploy check must hear about.
    const unhealthy = snapshot.vassals.flatMap((v) =>
      v.error
        ? [`${v.name} (config error)`]
        : v.state === 'failed' || v.state === 'backoff'
          ? [`${v.name} (${v.state})`]
          : v.reason !== null
            ? [`${v.name} (its file's version is not running)`]
            : v.quick_exits > 0
              ? [`${v.name} (crash loop: ${String(v.quick_exits)} quick exits)`]
              : [],
    );
    if (unhealthy.length === 0) return 0;
    output.err(`emperor: unhealthy: ${unhealthy.join(', ')}`);
    return 1;
  },
});
