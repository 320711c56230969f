// `emperor run` runs Node with V8 flags that keep a mostly sleeping daemon small
// (docs/architecture.md, "Memory"). They take full effect only on Node's command line (the heap's
// sizes are fixed when V8 starts), so the daemon restarts itself once with them, keeping its pid.
// $EMPEROR_NODE_FLAGS replaces the list; set empty, Node runs as it was started.
import { setFlagsFromString } from 'node:v8';
import { replaceProcess } from '@emperor/native/exec';

export const DEFAULT_NODE_FLAGS: readonly string[] = ['--optimize-for-size', '--no-opt'];

/**
 * The flags the daemon wants: $EMPEROR_NODE_FLAGS when set (split on blanks), else the defaults.
 * Each word must be a whole flag (`--name` or `--name=value`): a value as a word of its own would
 * land among the script's arguments.
 */
export function wantedNodeFlags(env: NodeJS.ProcessEnv): string[] {
  const own = env.EMPEROR_NODE_FLAGS;
  if (own === undefined) return [...DEFAULT_NODE_FLAGS];
  const words = own.split(/\s+/).filter(Boolean);
  const bad = words.find((w) => !/^--[a-z0-9]/i.test(w));
  if (bad !== undefined)
    throw Object.assign(
      new Error(
        `EMPEROR_NODE_FLAGS: \`${bad}\` is not a flag; write each one as --name or --name=value ` +
          '(`--max-semi-space-size=2`), or set it empty to run Node as started',
      ),
      { code: 'EMP_NODE_FLAGS_INVALID' },
    );
  return words;
}

const V8_FLAG_ALIASES: Readonly<Record<string, string>> = { opt: 'turbofan' };

/** The setting a flag is about: `--no-opt`, `--turbofan` and `--max_semi_space_size=1` name theirs. */
function settingOf(flag: string): string {
  const name = flag.replace(/^--?/, '').replace(/=.*$/, '').replaceAll('_', '-').replace(/^no-/, '');
  return V8_FLAG_ALIASES[name] ?? name;
}

/** The wanted flags whose setting neither Node's command line nor $NODE_OPTIONS already names. */
export function missingNodeFlags(
  wanted: readonly string[],
  execArgv: readonly string[],
  nodeOptions = '',
): string[] {
  const named = new Set(
    [...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('-')).map(settingOf),
  );
  return wanted.filter((flag) => !named.has(settingOf(flag)));
}

/** Why Node was not restarted with its flags (they were then set at run time, with less effect). */
export interface RelaunchFailure {
  readonly code: string | undefined;
  readonly message: string;
}

let outcome: { failure: RelaunchFailure | undefined } | undefined;

/**
 * Restarts this Node with the flags it lacks, before anything else (`emperor` calls it before
 * stdout is touched: Node makes a pipe non-blocking on first use, and the restarted Node would
 * keep that as the pipe's original state). Returns when there is nothing to add, or when the
 * exec failed: then with why. Throws EMP_NODE_FLAGS_INVALID for a bad $EMPEROR_NODE_FLAGS. Once
 * it has returned, later calls return the same.
 */
export function relaunchWithNodeFlags(): RelaunchFailure | undefined {
  if (outcome !== undefined) return outcome.failure;
  // Set in the restarted Node's environment only, and deleted at once: it never restarts twice.
  const restarted = process.env.EMPEROR_NODE_RESTARTED !== undefined;
  delete process.env.EMPEROR_NODE_RESTARTED;
  const missing = restarted
    ? []
    : missingNodeFlags(wantedNodeFlags(process.env), process.execArgv, process.env.NODE_OPTIONS);
  outcome = { failure: undefined };
  if (missing.length === 0) return undefined;
  try {
    replaceProcess(
      process.execPath,
      [process.argv0, ...missing, ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, EMPEROR_NODE_RESTARTED: '1' },
    );
  } catch (error) {
    for (const flag of missing) setFlagsFromString(flag);
    const { code, message } = error as { code?: string; message: string };
    outcome = { failure: { code, message } };
  }
  return outcome.failure;
}
