// `emperor start|stop|restart|reload NAME|GLOB|all [--wait]`: one module for the four actions,
// which differ only in their word (the daemon's runner gives each its meaning).
import type { ActionResult } from '@emperor/daemon';
import { call } from '../control-client.js';
import { daemonCommand } from '../daemon-command.js';
import { UsageError } from '../fast-command.js';

const MEANING = {
  start: 'starts a stopped or failed vassal',
  stop: 'stops a vassal and holds it stopped until `emperor start` or the next change of its file',
  restart: 'stops and starts a vassal (a pending backoff is skipped)',
  reload: 'applies the vassal file as it is now (rolling with sockets, else stop then start)',
} as const;

type Action = keyof typeof MEANING;

function actionCommand(action: Action) {
  return daemonCommand({
    usage: `${action} <targets..>`,
    positional: 'targets',
    positionals: { min: 1, max: 1000, what: 'vassal name, glob or `all`' },
    options: {
      wait: {
        type: 'boolean',
        describe:
          action === 'stop'
            ? 'Return once the vassals are stopped'
            : 'Return once the new generation is ready (exit 0) or has failed (exit 1, with the reason)',
      },
      timeout: {
        type: 'string',
        describe: 'With --wait: give up after this many seconds; exit 1',
        default: () => '300',
      },
      json: { type: 'boolean', describe: 'Print the answer of the API as JSON (docs/protocol.md)' },
    },
    examples: [
      [`$0 ${action} shop`, `${action[0]?.toUpperCase() ?? ''}${action.slice(1)} one vassal`],
      [`$0 ${action} 'shop-*' --wait`, 'Every shop-* vassal; wait for the outcome'],
    ],
    epilogue: `\`${action}\` ${MEANING[action]}. Exit codes: 0 done, 1 unknown vassal or failed, 2 usage error, 3 the emperor is not reachable.`,
    run: async (args, socket, output) => {
      const wait = args.values.wait === true;
      const timeout = args.values.timeout;
      const timeoutS = typeof timeout === 'string' ? Number(timeout) : undefined;
      if (timeoutS !== undefined && !(timeoutS > 0))
        throw new UsageError('--timeout takes a number of seconds above 0');
      if (timeoutS !== undefined && !wait) throw new UsageError('--timeout goes with --wait');
      const answer = await call<{ action: string; results: ActionResult[] }>(socket, '/v1/actions', {
        method: 'POST',
        body: {
          action,
          targets: args.positionals,
          wait,
          ...(timeoutS === undefined ? {} : { timeout_s: timeoutS }),
        },
        noTimeout: wait,
      });
      if (args.values.json === true) {
        output.out(JSON.stringify(answer, null, 2));
        return answer.results.every((r) => r.ok) ? 0 : 1;
      }
      let failed = 0;
      for (const r of answer.results) {
        if (r.ok) {
          const gen = r.generation > 0 && action !== 'stop' ? `, generation ${r.generation}` : '';
          output.out(`${r.name}: ${wait ? r.state : `${action} requested (now ${r.state})`}${gen}`);
        } else {
          failed++;
          output.err(`${r.name}: ${r.state}: ${r.reason ?? 'failed'}`);
        }
      }
      if (answer.results.length === 0) output.out('no vassals');
      return failed > 0 ? 1 : 0;
    },
  });
}

export const startCommand = actionCommand('start');
export const stopCommand = actionCommand('stop');
export const restartCommand = actionCommand('restart');
export const reloadCommand = actionCommand('reload');
