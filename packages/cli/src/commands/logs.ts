// `emperor logs NAME [-n N] [-f]`: the vassal's log through the control socket, so the operator
// needs no access to the log directory. `-f` follows across rotations and reloads. The log of a
// vassal that is gone is printed too, followed by a note on stderr that it is gone.
import { open, DaemonError } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { UsageError } from '../fast-command.js';

export const logsCommand = daemonCommand({
  usage: 'logs <name>',
  positional: 'name',
  positionals: { min: 1, max: 1, what: 'vassal name' },
  options: {
    lines: {
      type: 'string',
      short: 'n',
      describe: 'How many of the last lines to print first',
      default: () => '20',
    },
    follow: {
      type: 'boolean',
      short: 'f',
      describe: 'Keep printing what the vassal writes, until interrupted',
    },
  },
  examples: [
    ['$0 logs shop -n 100', 'The last 100 lines of shop'],
    ['$0 logs shop -f', 'Follow shop (Ctrl-C to stop)'],
  ],
  run: async (args, socket, output) => {
    const name = args.positionals[0] ?? '';
    const n = args.values.lines;
    if (n !== undefined && (typeof n !== 'string' || !/^\d+$/.test(n)))
      throw new UsageError(`-n takes a whole number of lines, got \`${String(n)}\``);
    const follow = args.values.follow === true;
    const query = new URLSearchParams();
    if (typeof n === 'string') query.set('lines', n);
    if (follow) query.set('follow', '1');
    const res = await open(socket, `/v1/vassals/${encodeURIComponent(name)}/logs?${query.toString()}`, {
      noTimeout: follow,
    });
    if ((res.statusCode ?? 500) >= 400) {
      const chunks: Buffer[] = [];
      for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
      let e: { code?: string; message?: string } | undefined;
      try {
        e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: typeof e }).error;
      } catch {
        e = undefined;
      }
      throw new DaemonError(
        res.statusCode ?? 500,
        e?.code ?? 'EMP_CONTROL_ERROR',
        e?.message ?? `HTTP ${res.statusCode ?? '?'}`,
      );
    }
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
    }
    if (res.headers['x-emperor-vassal'] === 'gone') {
      const path = res.headers['x-emperor-log'];
      output.err(
        `emperor: ${name} is gone (no vassal file defines it now); that was the end of its log` +
          (typeof path === 'string' ? ` ${path}` : ''),
      );
    }
    return 0;
  },
});
