// `emperor run` runs Node with V8 flags that keep a mostly sleeping daemon small
// (docs/architecture.md, "Memory"). They take full effect only on Node's command line (the heap's
// sizes are fixed when V8 starts), so the daemon restarts itself once with them, keeping its pid.
// $EMPEROR_NODE_FLAGS replaces the list; set empty, Node runs as it was started.
import { setFlagsFromString } from 'node:v8';
import { replaceProcess } from '@emperor/native';

export const DEFAULT_NODE_FLAGS: readonly string[] = ['--optimize-for-size', '--no-opt'];

/** The flags the daemon wants: $EMPEROR_NODE_FLAGS when set (split on blanks), else the defaults. */
export function wantedNodeFlags(env: NodeJS.ProcessEnv): string[] {
  const own = env.EMPEROR_NODE_FLAGS;
  return own === undefined ? [...DEFAULT_NODE_FLAGS] : own.split(/\s+/).filter(Boolean);
}

const ALIASES: Readonly<Record<string, string>> = { opt: 'turbofan' };

/** The setting a flag is about: `--no-opt`, `--turbofan` and `--opt=1` are all `turbofan`. */
function settingOf(flag: string): string {
  const name = flag.replace(/^--?/, '').replace(/=.*$/, '').replaceAll('_', '-').replace(/^no-/, '');
  return ALIASES[name] ?? name;
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

/**
 * Restarts this Node with the flags it lacks, before the daemon loads; returns only when there is
 * nothing to add (then undefined) or the exec failed (then its error, and the flags are set where
 * V8 still takes them, with less effect).
 */
export function relaunchWithNodeFlags(): Error | undefined {
  const missing = missingNodeFlags(wantedNodeFlags(process.env), process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length === 0) return undefined;
  try {
    replaceProcess(
      process.execPath,
      [process.argv0, ...missing, ...process.execArgv, ...process.argv.slice(1)],
      process.env,
    );
  } catch (error) {
    for (const flag of missing) setFlagsFromString(flag);
    return error as Error;
  }
}
