// Error codes of the control socket (docs/protocol.md). Every error answer is
// `{"error": {"code", "message", ...}}` with a 4xx/5xx status; the CLI prints the message.

export const CONTROL_ERRORS = {
  EMP_CONTROL_BAD_REQUEST: 400,
  EMP_CONTROL_BAD_JSON: 400,
  EMP_CONTROL_UNAUTHORIZED: 401,
  EMP_CONTROL_FORBIDDEN: 403,
  EMP_CONTROL_NOT_FOUND: 404,
  EMP_VASSAL_UNKNOWN: 404,
  EMP_CONTROL_METHOD: 405,
  EMP_CONTROL_TIMEOUT: 408,
  EMP_VASSAL_NOT_RUNNING: 409,
  EMP_CONTROL_TOO_LARGE: 413,
  EMP_CONTROL_INTERNAL: 500,
  EMP_CONTROL_STARTING: 503,
  EMP_CONTROL_BUSY: 503,
} as const;

export type ControlErrorCode = keyof typeof CONTROL_ERRORS;

/** An error meant for the client: its code picks the HTTP status. */
export class ControlError extends Error {
  readonly code: ControlErrorCode;
  readonly extra: Readonly<Record<string, unknown>>;
  constructor(code: ControlErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.extra = extra;
  }
  get status(): number {
    return CONTROL_ERRORS[this.code];
  }
}

/** Errors of `emperor run` itself when it cannot open the control socket. */
export class ControlSocketError extends Error {
  readonly code: 'EMP_CONTROL_IN_USE' | 'EMP_CONTROL_NOT_SOCKET' | 'EMP_CONTROL_GROUP';
  constructor(code: ControlSocketError['code'], message: string) {
    super(message);
    this.code = code;
  }
}
