// `emperor top [FILTER]`: a live view of every vassal (as `pm2 monit`, `uwsgitop`), sorted by
// CPU or memory, with sparklines from the daemon's history (GET /v1/history) and keys to act on
// the selected vassal. Loaded only for `top`: no other command pays for it.
import { daemonCommand } from '../daemon-command.js';
import { UsageError } from '../fast-command.js';
import { printOnce, runTop } from '../top/app.js';
import type { SortKey } from '../top/view.js';

const SORT_KEYS: readonly SortKey[] = ['cpu', 'mem', 'name'];

export const topCommand = daemonCommand({
  usage: 'top [filter]',
  positional: 'filter',
  positionals: { min: 0, max: 1, what: 'part of a vassal name' },
  options: {
    sort: { type: 'string', describe: 'Sort by cpu, mem or name (keys c, m, n)', default: () => 'cpu' },
    interval: { type: 'string', describe: 'Seconds between refreshes', default: () => '2' },
  },
  examples: [
    ['$0 top', 'Every vassal, busiest first; q to quit'],
    ['$0 top shop --sort mem', 'The vassals whose name has `shop`, largest first'],
  ],
  epilogue:
    'Keys: up/down (or j/k) select, c/m/n sort by CPU, memory or name, / filter, l follow the log of the selected vassal, r reload, R restart, s stop, S start (each asks y to confirm), q or Ctrl-C quit. Without a terminal, prints one frame and exits.',
  run: async (args, socket, output) => {
    const sort = (args.values.sort ?? 'cpu') as string;
    if (!(SORT_KEYS as readonly string[]).includes(sort))
      throw new UsageError(`--sort must be one of ${SORT_KEYS.join(', ')}; got \`${sort}\``);
    const interval = String(args.values.interval ?? '2');
    if (!/^\d+(\.\d+)?$/.test(interval) || Number(interval) < 0.2 || Number(interval) > 3600)
      throw new UsageError(`--interval takes seconds from 0.2 to 3600, got \`${interval}\``);
    const options = {
      socket,
      sort: sort as SortKey,
      intervalMs: Number(interval) * 1000,
      filter: args.positionals[0] ?? '',
    };
    if (!process.stdout.isTTY || !process.stdin.isTTY) return printOnce(options, output);
    return runTop(options);
  },
});
