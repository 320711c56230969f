/** An instance up at least this long resets the backoff (SPEC §4). */
export const BACKOFF_RESET_MS = 10_000;
