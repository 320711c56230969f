// What the CLI needs of etcd (`status --cluster`, `fleet`), without loading the daemon.
export { EtcdClient, type EtcdClientOptions } from './client.js';
export { parseEtcdUrl, type EtcdUrl } from './url.js';
export type { PublishedStatus } from './status-publisher.js';
