/** `message [CODE]`: every failure the user sees carries its code (SPEC §5). */
export function failure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('EMP_') ? `${err.message} [${code}]` : err.message;
}

/** Codes of errors that are the user's command line (or `--config` file): exit 2. */
const USAGE_CODES = new Set(['EMP_CLI_USAGE', 'EMP_RUN_CONFIG']);

export function isUsageError(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return (
    (err instanceof Error && err.name === 'UsageError') || (typeof code === 'string' && USAGE_CODES.has(code))
  );
}
