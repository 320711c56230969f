// Whether clients are connected to an owned socket, read from the kernel's connection tables, so
// the emperor can tell an idle on-demand vassal without ever touching a connection itself.
import { readFileSync } from 'node:fs';

const TCP_LISTEN = '0A';
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

/**
 * Local TCP ports that have a connection in any state but LISTEN (established, closing,
 * TIME_WAIT): a request served a moment ago still counts as activity.
 */
export function tcpPortsInUse(): Set<number> {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = read(table).split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]?.trim().split(/\s+/);
      if (!f || f.length < 4 || f[3] === TCP_LISTEN) continue;
      const local = f[1] ?? '';
      ports.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
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
