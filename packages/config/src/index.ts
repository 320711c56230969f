// @emperor/config: reads, expands and validates vassal files. Pure apart from reading the file.
export type * from './types.js';
export { ERROR_CODES, isErrorCode, type ErrorCode } from './errors.js';
export { formatIssue, type ConfigIssue } from './issue.js';
export { parseVassal, type ParseResult } from './parse.js';
export { parseVassalBytes, readVassalFile, MAX_FILE_BYTES, type ReadVassalResult } from './read-file.js';
export { DEFAULTS, type VassalDefaults } from './defaults.js';
export { vassalNameOf } from './file-name.js';
export { placedOn } from './node-glob.js';
export { KEYS, KEY_NAMES, type KeyName, type KeySpec } from './keys.js';
export { socketsConflict, UNIX_PATH_MAX } from './socket-address.js';
export {
  claimedSockets,
  crossVassalIssues,
  SocketClaims,
  socketConflictIssue,
  type CheckedVassal,
  type SocketClash,
  type SocketHolder,
} from './cross-vassal.js';
