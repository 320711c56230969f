/** Codes of the errors the SDK throws; documented in docs/protocol.md and the package README. */
export type VassalErrorCode = 'EMP_SDK_NO_SOCKET' | 'EMP_SDK_SOCKET_NAME' | 'EMP_SDK_BAD_PORT';

export class VassalError extends Error {
  readonly code: VassalErrorCode;

  constructor(code: VassalErrorCode, message: string) {
    super(message);
    this.name = 'VassalError';
    this.code = code;
  }
}
