// The CLI side of the control socket: HTTP/1.1 over a unix socket with node:http, nothing else.
// The CLI never starts a daemon; an unreachable one is exit code 3 with what to do about it.
import { request, type IncomingMessage } from 'node:http';
import { defaultPaths } from '@emperor/daemon/paths';

export const EXIT_UNREACHABLE = 3;

/** The socket the daemon listens on: --control, then EMPEROR_CONTROL, then SPEC §5's default. */
export function controlPath(option: string | boolean | undefined): string {
  return typeof option === 'string' && option !== '' ? option : defaultPaths().control;
}

/** The daemon is not there, or we may not talk to it. */
export class UnreachableError extends Error {
  constructor(path: string, errno: string) {
    const [why, notRunning] = unreachableWhy(path, errno);
    super(
      `cannot reach the emperor at ${path} (${errno}): ${why}.` +
        // Only when it is likely not running: starting a second one would not help otherwise.
        (notRunning
          ? '\nStart it with `emperor run` (as a service: `systemctl start emperor`), or point --control or EMPEROR_CONTROL at its socket.'
          : ''),
    );
  }
}

/** What the errno of connect() or of the exchange says, and whether the emperor is likely down. */
function unreachableWhy(path: string, errno: string): [string, boolean] {
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
      return [
        `permission denied: this user may not open the socket (\`ls -l ${path}\`); run as its owner or a member of its group (\`emperor run --control-group\`), or use sudo`,
        false,
      ];
    case 'ENOENT':
      return ['no socket there: the emperor is not running, or listens elsewhere', true];
    case 'ECONNREFUSED':
      return ['nothing listens there: the emperor that made it has stopped', true];
    case 'ECONNRESET':
    case 'EPIPE':
      return [
        'the emperor closed the connection without an answer: it may be out of file descriptors or stopping (see its log)',
        false,
      ];
    case 'ETIMEDOUT':
      return ['the emperor accepted the connection but did not answer in time', false];
    case 'EAGAIN':
      return ['the emperor does not accept connections as fast as they come (its backlog is full)', false];
    default:
      return ['the emperor does not answer', true];
  }
}

/** An error answer of the daemon: `{"error": {"code", "message"}}`. */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallOptions {
  readonly method?: 'GET' | 'POST';
  readonly body?: unknown;
  /** No deadline (log following, `--wait`). */
  readonly noTimeout?: boolean;
}

const TIMEOUT_MS = 15_000;

/** Sends one request; resolves with the response to read as a stream. */
export function open(path: string, target: string, options: CallOptions = {}): Promise<IncomingMessage> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: path,
        path: target,
        method: options.method ?? 'GET',
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        agent: false,
      },
      resolve,
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code && !req.reusedSocket ? new UnreachableError(path, err.code) : err);
    });
    if (!options.noTimeout)
      req.setTimeout(TIMEOUT_MS, () => {
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
      });
    req.end(body);
  });
}

/** Sends one request and parses the JSON answer; error answers throw a DaemonError. */
export async function call<T>(path: string, target: string, options: CallOptions = {}): Promise<T> {
  const res = await open(path, target, options);
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DaemonError(
      res.statusCode ?? 0,
      'EMP_CONTROL_BAD_ANSWER',
      `the daemon answered ${res.statusCode ?? '?'} with something that is not JSON`,
    );
  }
  if ((res.statusCode ?? 500) >= 400) {
    const e = (json as { error?: { code?: string; message?: string } }).error;
    throw new DaemonError(
      res.statusCode ?? 500,
      e?.code ?? 'EMP_CONTROL_ERROR',
      e?.message ?? `HTTP ${res.statusCode ?? '?'}`,
    );
  }
  return json as T;
}
