// Whether clients are connected to an owned socket, read from the kernel's connection tables, so
// the emperor can tell an idle on-demand vassal without ever touching a connection itself.
import { readFileSync } from 'node:fs';

const TCP_LISTEN = '0A';
const TCP_TIME_WAIT = '06';
const UNIX_CONNECTED = '03';
/** __SO_ACCEPTCON in /proc/net/unix flags: the listening socket itself. */
const UNIX_ACCEPTCON = 0x10000;

function read(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return ''; // no IPv6, or no /proc: nothing connected that we can see
  }
}

export interface TcpActivity {
  /** Local ports with a connection open now (any state but LISTEN and TIME_WAIT). */
  readonly open: Set<number>;
  /**
   * Connections in TIME_WAIT, as `localPort|local|remote`: those the server closed in the last
   * minute. One not seen at the previous probe is a request served since, however short.
   */
  readonly closed: Set<string>;
}

export function tcpActivity(): TcpActivity {
  const open = new Set<number>();
  const closed = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = read(table).split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]?.trim().split(/\s+/);
      if (!f || f.length < 4 || f[3] === TCP_LISTEN) continue;
      const local = f[1] ?? '';
      const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (f[3] === TCP_TIME_WAIT) closed.add(`${port}|${local}|${f[2] ?? ''}`);
      else open.add(port);
    }
  }
  return { open, closed };
}

/**
 * Paths of unix sockets with an accepted connection: an accepted socket shares the address of the
 * listening one, so it shows in /proc/net/unix under the same path, without the listening flag.
 */
export function unixPathsInUse(): Set<string> {
  const paths = new Set<string>();
  const lines = read('/proc/net/unix').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]?.trim().split(/\s+/);
    if (!f || f.length < 8 || f[5] !== UNIX_CONNECTED) continue;
    if (parseInt(f[3] ?? '0', 16) & UNIX_ACCEPTCON) continue;
    paths.add(f.slice(7).join(' '));
  }
  return paths;
}

/**
 * Connections waiting to be accepted on each listening TCP port (the accept queue, which
 * /proc/net/tcp reports as rx_queue of a LISTEN row), summed over IPv4 and IPv6. Unix sockets
 * have no such column: their queues are not known.
 */
export function tcpAcceptQueues(): Map<number, number> {
  const queues = new Map<number, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = read(table).split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]?.trim().split(/\s+/);
      if (!f || f.length < 5 || f[3] !== TCP_LISTEN) continue;
      const local = f[1] ?? '';
      const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      const queued = parseInt((f[4] ?? '').split(':')[1] ?? '0', 16);
      queues.set(port, (queues.get(port) ?? 0) + (Number.isFinite(queued) ? queued : 0));
    }
  }
  return queues;
}
