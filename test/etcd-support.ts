// A real etcd (Debian's etcd-server) for the fleet tests: one member or a cluster of several on
// free loopback ports in a temporary directory, started once per test file and stopped by pid;
// optionally serving HTTPS with certificates made by openssl at start; and a TCP relay in front of
// it that a test can cut, to part one emperor from a store that keeps running.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { DEADLINE_MS, freePort, waitFor } from './support.js';

/** PEM files of a test CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface EtcdCerts {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface EtcdMember {
  readonly name: string;
  /** `127.0.0.1:PORT` of its client port. */
  readonly endpoint: string;
  readonly port: number;
  /** SIGKILL, wait for the exit: the member is gone as a crashed host would be. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface Etcd {
  /** `127.0.0.1:PORT` of the first member's client port. */
  readonly endpoint: string;
  readonly port: number;
  /** Every member, in the order of `url()`'s endpoints. */
  readonly members: readonly EtcdMember[];
  /** With `tls`: the certificates it serves and trusts. */
  readonly certs: EtcdCerts | undefined;
  /** `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`, every member's endpoint. */
  url(prefix: string): string;
  /** etcdctl against every member that runs (with the certificates under TLS). */
  ctl(...args: string[]): Promise<string>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /** The store's current revision. */
  revision(): Promise<number>;
  /** The index in `members` of the current leader. */
  leader(): Promise<number>;
  /** Every member: SIGTERM, wait for the exit. The data stays: start() brings the same store back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  destroy(): Promise<void>;
}

export interface EtcdOptions {
  /** Members of the cluster (1). */
  readonly size?: number;
  /** Serve HTTPS to clients with certificates made here; `clientCertAuth` also demands theirs. */
  readonly tls?: { readonly clientCertAuth?: boolean };
}

/** A CA, a server certificate for 127.0.0.1 (IP SAN) and a client certificate, made by openssl. */
export function makeCerts(dir: string): EtcdCerts {
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const key = (out: string): void => {
    ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f(out));
  };
  key('ca.key');
  ssl(
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-subj',
    '/CN=emperor test CA',
    '-days',
    '2',
    '-out',
    f('ca.pem'),
  );
  const signed = (name: string, cn: string, ext: string): void => {
    key(`${name}.key`);
    ssl('req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${cn}`, '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  signed('server', '127.0.0.1', 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth, clientAuth\n');
  signed('client', 'emperor', 'extendedKeyUsage = clientAuth\n');
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

function healthy(port: number, certs: EtcdCerts | undefined): Promise<boolean> {
  return new Promise((done) => {
    const opts = { host: '127.0.0.1', port, path: '/health', timeout: 2000 };
    const onRes = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        done(res.statusCode === 200 && body.includes('true'));
      });
    };
    const req = certs
      ? httpsRequest(
          {
            ...opts,
            ca: readFileSync(certs.ca),
            cert: readFileSync(certs.clientCert),
            key: readFileSync(certs.clientKey),
          },
          onRes,
        )
      : httpRequest(opts, onRes);
    req.on('error', () => {
      done(false);
    });
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function startEtcd(options: EtcdOptions = {}): Promise<Etcd> {
  const size = options.size ?? 1;
  const dir = mkdtempSync('/tmp/emp-etcd-');
  const certs = options.tls ? makeCerts(dir) : undefined;
  const scheme = certs ? 'https' : 'http';
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const cluster = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const output: string[] = [];
  const running = new Set<number>();

  const member = (i: number, p: { client: number; peer: number }) => {
    const name = `m${i + 1}`;
    const endpoint = `127.0.0.1:${p.client}`;
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    const spawnIt = (): void => {
      child = spawn(
        'etcd',
        [
          '--name',
          name,
          '--data-dir',
          join(dir, name),
          '--listen-client-urls',
          `${scheme}://${endpoint}`,
          '--advertise-client-urls',
          `${scheme}://${endpoint}`,
          '--listen-peer-urls',
          `http://127.0.0.1:${p.peer}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${p.peer}`,
          '--initial-cluster',
          cluster,
          '--initial-cluster-token',
          dir,
          '--log-level',
          'warn',
          ...(certs ? ['--cert-file', certs.serverCert, '--key-file', certs.serverKey] : []),
          ...(certs && options.tls?.clientCertAuth
            ? ['--client-cert-auth', '--trusted-ca-file', certs.ca]
            : []),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const c = child;
      running.add(i);
      c.stderr?.setEncoding('utf8').on('data', (s: string) => output.push(`${name}: ${s}`));
      exited = new Promise((done) => {
        c.once('exit', () => {
          running.delete(i);
          done();
        });
      });
    };
    const healthyNow = (): Promise<void> =>
      waitFor(() => healthy(p.client, certs), {
        what: `etcd ${name} on ${endpoint}`,
        seen: () => output.join('').slice(-2000),
      }).then(() => undefined);
    const end = async (signal: NodeJS.Signals): Promise<void> => {
      const c = child;
      if (c?.exitCode === null && c.signalCode === null) {
        c.kill(signal);
        const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      child = undefined;
    };
    return {
      name,
      endpoint,
      port: p.client,
      spawnIt,
      healthyNow,
      end,
      kill: () => end('SIGKILL'),
      start: async () => {
        spawnIt();
        await healthyNow();
      },
    };
  };
  const members = ports.map((p, i) => member(i, p));
  // Every member at once: none is healthy before a quorum of them runs.
  const start = async (): Promise<void> => {
    for (const m of members) m.spawnIt();
    await Promise.all(members.map((m) => m.healthyNow()));
  };
  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.end('SIGTERM')));
  };
  const tlsArgs = certs
    ? [`--cacert=${certs.ca}`, `--cert=${certs.clientCert}`, `--key=${certs.clientKey}`]
    : [];
  const ctl = (...args: string[]): Promise<string> =>
    new Promise((done, fail) => {
      const endpoints = members.filter((_, i) => running.has(i)).map((m) => `${scheme}://${m.endpoint}`);
      execFile(
        'etcdctl',
        [`--endpoints=${endpoints.join(',')}`, ...tlsArgs, ...args],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: DEADLINE_MS },
        (err, stdout, stderr) => {
          if (err) fail(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`));
          else done(stdout);
        },
      );
    });
  interface EndpointStatus {
    Endpoint: string;
    Status: { header: { revision: number; member_id: number }; leader: number };
  }
  const statuses = async (): Promise<EndpointStatus[]> =>
    JSON.parse(await ctl('endpoint', 'status', '-w', 'json')) as EndpointStatus[];
  await start();
  const first = members[0];
  if (!first) throw new Error('an etcd cluster has one member or more');
  return {
    endpoint: first.endpoint,
    port: first.port,
    members,
    certs,
    url: (prefix) => `etcd://${members.map((m) => m.endpoint).join(',')}${prefix}`,
    ctl,
    put: async (key, value) => {
      await ctl('put', key, value);
    },
    del: async (key) => {
      await ctl('del', key);
    },
    revision: async () => Math.max(0, ...(await statuses()).map((s) => s.Status.header.revision)),
    leader: async () => {
      const all = await statuses();
      const leader = all.find((s) => s.Status.header.member_id === s.Status.leader);
      return members.findIndex((m) => leader?.Endpoint.endsWith(`//${m.endpoint}`));
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

/**
 * The remote ports of the established TCP connections of process `pid` to 127.0.0.1: which etcd
 * member its (long-lived) watch stream is on. Its own sockets (/proc/PID/fd) matched by inode
 * against the table of its network namespace.
 */
export function remotePortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [remote, state, inode] = [f[2], f[3], f[9]];
    // 0100007F: 127.0.0.1; state 01: ESTABLISHED.
    if (remote?.startsWith('0100007F:') && state === '01' && inode && inodes.has(inode))
      ports.add(parseInt(remote.slice(9), 16));
  }
  return ports;
}
