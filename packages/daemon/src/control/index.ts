export { openControlServer, type ControlServer, type ControlServerOptions } from './server.js';
export { openDashboardServer, type DashboardServer } from './dashboard-server.js';
export { openMetricsServer, parseListenAddress, type MetricsServer } from './metrics-server.js';
export { ControlSocketError, CONTROL_ERRORS, type ControlErrorCode } from './errors.js';
export type {
  StatusSnapshot,
  VassalStatus,
  InstanceStatus,
  SideDaemonStatus,
  CronJobStatus,
} from './snapshot.js';
export type { ActionResult, SignalResult } from './actions.js';
export type { HistorySnapshot, VassalHistory, InstanceHistory, HistoryEvent } from './history.js';
