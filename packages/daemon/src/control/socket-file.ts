// The control socket file: one emperor per socket, a stale file left by a killed emperor is
// replaced, and the file is created with mode 0660 (never wider, not even for a moment).
import { chmodSync, chownSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { ControlSocketError } from './errors.js';

const PROBE_TIMEOUT_MS = 1000;

/** True when something accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    const done = (answer: boolean): void => {
      sock.destroy();
      resolve(answer);
    };
    sock.setTimeout(PROBE_TIMEOUT_MS, () => {
      done(true); // accepted by the kernel but slow: someone holds it
    });
    sock.once('connect', () => {
      done(true);
    });
    sock.once('error', () => {
      done(false);
    });
  });
}

/** Removes a stale socket at `path`; refuses a live one or a file that is not a socket. */
export async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket)
    throw new ControlSocketError(
      'EMP_CONTROL_NOT_SOCKET',
      `${path} exists and is not a socket; remove it or choose another --control path`,
    );
  if (await socketAnswers(path))
    throw new ControlSocketError(
      'EMP_CONTROL_IN_USE',
      `another emperor answers on ${path}; stop it first (\`emperor status\` shows it), or give this one another --control path`,
    );
  unlinkSync(path);
}

/** `server.listen(path)` with a umask that keeps the socket at most 0660 from its creation. */
export function listenPrivately(server: Server, path: string, gid: number | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(err);
    };
    server.once('error', onError);
    // The bind happens inside listen() for a unix path; the umask is restored right after.
    const mask = process.umask(0o117);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        try {
          if (gid !== undefined) chownSync(path, -1, gid);
          chmodSync(path, 0o660);
          resolve();
        } catch (err) {
          reject(
            new ControlSocketError(
              'EMP_CONTROL_GROUP',
              `cannot give ${path} to group ${gid ?? ''}: ${err instanceof Error ? err.message : String(err)}`,
            ),
          );
        }
      });
    } finally {
      process.umask(mask);
    }
  });
}
