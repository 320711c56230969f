// A real etcd (Debian's etcd-server) for the fleet tests: one member on free loopback ports in a
// temporary directory, started once per test file and stopped by its pid; and a TCP relay in front
// of it that a test can cut, to part one emperor from a store that keeps running.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import { DEADLINE_MS, freePort, waitFor } from './support.js';

export interface Etcd {
  /** `127.0.0.1:PORT` of the client port. */
  readonly endpoint: string;
  readonly port: number;
  /** `etcd://127.0.0.1:PORT/PREFIX`. */
  url(prefix: string): string;
  ctl(...args: string[]): Promise<string>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /** The store's current revision. */
  revision(): Promise<number>;
  /** SIGTERM, wait for the exit. The data stays: start() brings the same store back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  destroy(): Promise<void>;
}

function healthy(port: number): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        done(res.statusCode === 200 && body.includes('true'));
      });
    });
    req.on('error', () => {
      done(false);
    });
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function startEtcd(): Promise<Etcd> {
  const dir = mkdtempSync('/tmp/emp-etcd-');
  const port = await freePort();
  const peer = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const output: string[] = [];
  const start = async (): Promise<void> => {
    child = spawn(
      'etcd',
      [
        '--name',
        'm1',
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        `http://${endpoint}`,
        '--advertise-client-urls',
        `http://${endpoint}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        `m1=http://127.0.0.1:${peer}`,
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const c = child;
    c.stderr?.setEncoding('utf8').on('data', (s: string) => output.push(s));
    exited = new Promise((done) => {
      c.once('exit', () => {
        done();
      });
    });
    await waitFor(() => healthy(port), {
      what: `etcd on ${endpoint}`,
      seen: () => output.join('').slice(-2000),
    });
  };
  const stop = async (): Promise<void> => {
    const c = child;
    if (c?.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    child = undefined;
  };
  const ctl = (...args: string[]): Promise<string> =>
    new Promise((done, fail) => {
      execFile(
        'etcdctl',
        [`--endpoints=http://${endpoint}`, ...args],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: DEADLINE_MS },
        (err, stdout, stderr) => {
          if (err) fail(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`));
          else done(stdout);
        },
      );
    });
  await start();
  return {
    endpoint,
    port,
    url: (prefix) => `etcd://${endpoint}${prefix}`,
    ctl,
    put: async (key, value) => {
      await ctl('put', key, value);
    },
    del: async (key) => {
      await ctl('del', key);
    },
    revision: async () => {
      const out = JSON.parse(await ctl('endpoint', 'status', '-w', 'json')) as {
        Status: { header: { revision: number } };
      }[];
      return out[0]?.Status.header.revision ?? 0;
    },
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP relay to `port` on a port of its own: `cut()` drops every connection and refuses new ones. */
export interface Relay {
  readonly port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startRelay(port: number): Promise<Relay> {
  const own = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (): Promise<void> =>
    new Promise((done, fail) => {
      const s = createServer((client) => {
        const upstream = createConnection({ host: '127.0.0.1', port });
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', fail);
      s.listen(own, '127.0.0.1', () => {
        server = s;
        done();
      });
    });
  const cut = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s)
      await new Promise<void>((done) => {
        s.close(() => {
          done();
        });
      });
  };
  await listen();
  return { port: own, cut, restore: listen, close: cut };
}
