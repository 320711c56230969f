// @emperor/vassal: what a Node app needs to be a good vassal. docs/protocol.md ("Vassal protocol")
// describes the same contract for other languages.
export { VassalError, type VassalErrorCode } from './errors.js';
export {
  listen,
  listenFds,
  DEFAULT_BACKLOG,
  LISTEN_FDS_START,
  type InheritedSocket,
  type ListenOptions,
  type Listening,
} from './listen-fds.js';
export { ready, status, heartbeat, notifyFd, MAX_STATUS_LENGTH } from './notify.js';
export {
  gracefulShutdown,
  DEFAULT_IDLE_GRACE_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  type GracefulShutdown,
  type GracefulShutdownOptions,
  type ShutdownOutcome,
} from './graceful-shutdown.js';
export { identity, type VassalIdentity } from './identity.js';
