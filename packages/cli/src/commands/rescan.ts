// `emperor rescan`: read the vassal directories again and apply what changed, as SIGHUP to the
// emperor does, for an operator who does not know its pid (or may not signal it).
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';

export const rescanCommand = daemonCommand({
  usage: 'rescan',
  positionals: { min: 0, max: 0, what: '' },
  options: { json: { type: 'boolean', describe: 'Print the answer of the API as JSON (docs/protocol.md)' } },
  examples: [['$0 rescan', 'Apply every file change, even one the watcher missed']],
  epilogue:
    'Returns once the scan is applied: new files started, changed ones reloaded, removed ones stopped. Exit codes: 0 done, 3 the emperor is not reachable.',
  run: async (args, socket, output) => {
    const answer = await call<{ vassal_dirs: string[]; vassals: number }>(socket, '/v1/rescan', {
      method: 'POST',
    });
    if (args.values.json === true) output.out(JSON.stringify(answer, null, 2));
    else
      output.out(
        `rescanned ${answer.vassal_dirs.join(', ')}: ${answer.vassals} vassal${answer.vassals === 1 ? '' : 's'}`,
      );
    return 0;
  },
});
