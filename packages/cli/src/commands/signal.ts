// `emperor signal NAME|GLOB SIG`: a signal to the main process of each running instance, as
// `supervisorctl signal` and `systemctl kill` send one (an app's own reload or log-reopen signal).
import type { SignalResult } from '@emperor/daemon';
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { UsageError } from '../fast-command.js';
import { signal } from '@emperor/config/converters';

/** `HUP`, `sighup` or `1` to `SIGHUP`, read as a vassal file's `stop-signal` is; a usage error otherwise. */
function signalName(given: string): string {
  const converted = signal(given);
  if (converted.ok) return converted.value;
  throw new UsageError(`\`${given}\` is not a signal: ${converted.message}`);
}

export const signalCommand = daemonCommand({
  usage: 'signal <target> <signal>',
  positionals: { min: 2, max: 2, what: 'vassal name or glob, then a signal (`emperor signal shop HUP`)' },
  options: { json: { type: 'boolean', describe: 'Print the answer of the API as JSON (docs/protocol.md)' } },
  examples: [
    ['$0 signal shop HUP', 'SIGHUP to every instance of shop'],
    ["$0 signal 'shop-*' USR1", 'SIGUSR1 to every shop-* vassal'],
  ],
  epilogue:
    'SIG is a name (SIGHUP, HUP, hup) or a number. It goes to the main process of each instance, not to its children; the emperor does not change the state of the vassal. Exit codes: 0 sent, 1 a vassal has no running instance or is unknown, 2 usage error (a bad signal), 3 the emperor is not reachable.',
  run: async (args, socket, output) => {
    const [target = '', given = ''] = args.positionals;
    const name = signalName(given);
    const answer = await call<{ signal: string; results: SignalResult[] }>(socket, '/v1/signal', {
      method: 'POST',
      body: { targets: [target], signal: name },
    });
    if (args.values.json === true) output.out(JSON.stringify(answer, null, 2));
    let failed = 0;
    for (const r of answer.results) {
      if (!r.ok) failed++;
      if (args.values.json === true) continue;
      if (r.ok)
        output.out(
          `${r.name}: ${answer.signal} sent to pid${r.pids.length === 1 ? '' : 's'} ${r.pids.join(', ')}`,
        );
      else output.err(`${r.name}: ${r.reason ?? 'not sent'}`);
    }
    return failed > 0 ? 1 : 0;
  },
});
