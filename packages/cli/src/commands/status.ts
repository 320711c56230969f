// `emperor status [NAME|GLOB] [--json]`: what runs, and what is broken and why.
// Loads no daemon or config code: a request on the socket and a table (SPEC §8.8).
import type { StatusSnapshot } from '@emperor/daemon';
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { formatTable } from '../status-table.js';

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
  },
  examples: [
    ['$0 status', 'Every vassal: state, pids, uptime, restarts, CPU, memory, sockets'],
    ["$0 status 'shop*' --json", 'The shop vassals as JSON'],
  ],
  epilogue: 'Exit codes: 0 shown, 1 no such vassal, 3 the emperor is not reachable.',
  run: async (args, socket, output) => {
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
    return 0;
  },
});
