// `emperor run --metrics HOST:PORT`: Prometheus `/metrics` over TCP. Readable by whoever can reach
// it (the one exception to the control socket's permissions, docs/protocol.md), so it carries
// numbers and vassal names only.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControlServer } from './server.js';

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** `HOST:PORT`, `[::1]:PORT` or a bare port (then 127.0.0.1). */
export function parseListenAddress(value: string, option = '--metrics'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw Object.assign(new Error(`${option} expects HOST:PORT or PORT, got \`${value}\``), {
      code: 'EMP_CLI_USAGE',
    });
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export function openMetricsServer(
  control: ControlServer,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    const text = control.metrics();
    if (text === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('starting\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
  });
  server.maxConnections = 64;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      let closing: Promise<void> | undefined;
      resolve({
        address: server.address() as AddressInfo,
        close: () =>
          (closing ??= new Promise((done) => {
            server.close(() => {
              done();
            });
            server.closeAllConnections();
          })),
      });
    });
  });
}
