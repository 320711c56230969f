/** `message [CODE]`: every failure the user sees carries its code (SPEC §5). */
export function failure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('EMP_') ? `${err.message} [${code}]` : err.message;
}
