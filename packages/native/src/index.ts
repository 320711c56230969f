// @emperor/native: the socket syscalls the emperor needs and Node lacks (see README.md).
export { bindTcp, bindUnix, formatTcpAddress, ListeningSocket, UNIX_PATH_MAX } from './listen.js';
export type { TcpOptions, UnixOptions } from './listen.js';
export { openDatagram, sendDatagram, DatagramSocket, ABSTRACT_NAME_MAX } from './datagram.js';
export type { Datagram } from './datagram.js';
export { OwnedFd } from './owned-fd.js';
export type { Watch } from './owned-fd.js';
export type { SocketError } from './errors.js';
export {
  spawnProcess,
  openPipe,
  openRawPipe,
  setPipeSize,
  trimMemory,
  closeRawFd,
  setGroupPriority,
  ChildProcessHandle,
} from './spawn.js';
export type { SpawnRequest, SpawnError, Exit } from './spawn.js';
export type { CgroupMethod } from './spawn.js';
export { setChildSubreaper, isChildSubreaper, reapPid } from './subreaper.js';
export { watchProcessExit } from './process-watch.js';
export type { ProcessWatch } from './process-watch.js';
export { replaceProcess } from './exec.js';
