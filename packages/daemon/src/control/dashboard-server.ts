// `emperor run --dashboard HOST:PORT`: the dashboard over TCP, for those who cannot tunnel to the
// control socket. Read-only for whoever can connect; actions need the token (dashboard-auth.ts).
// The requests themselves are answered by the control server, so both ways behave alike.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';
import type { ControlServer } from './server.js';
import { presentedToken, TokenFile, writeToken } from './dashboard-auth.js';
import { rmSync } from 'node:fs';

const MAX_CONNECTIONS = 64;

export interface DashboardServer {
  readonly address: AddressInfo;
  /** Where the token is (mode 0640). */
  readonly tokenFile: string;
  close(): Promise<void>;
}

export function openDashboardServer(
  control: ControlServer,
  opts: { host: string; port: number; runtimeDir: string; gid?: number },
): Promise<DashboardServer> {
  const tokenFile = writeToken(opts.runtimeDir, opts.gid);
  const tokens = new TokenFile(tokenFile);
  const hostName = isIP(opts.host) === 0 ? opts.host : undefined;
  const server: Server = createServer(
    { requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 },
    (req, res) => {
      const presented = presentedToken(req.headers);
      const token = presented && tokens.matches(presented.token) ? presented.via : undefined;
      control.serve(req, res, { transport: 'tcp', tokens, token, hostName });
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.on('connection', (socket: Socket) => {
    socket.setTimeout(30_000); // the event stream and log followers lift it
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      rmSync(tokenFile, { force: true });
      reject(err);
    });
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      let closing: Promise<void> | undefined;
      resolve({
        address: server.address() as AddressInfo,
        tokenFile,
        close: () =>
          (closing ??= new Promise((done) => {
            rmSync(tokenFile, { force: true });
            server.close(() => {
              done();
            });
            server.closeAllConnections();
          })),
      });
    });
  });
}
