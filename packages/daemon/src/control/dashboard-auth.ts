// Who may act through the dashboard (docs/dashboard.md, "Who may do what").
//
// On the control socket the socket's permissions authenticate, as for the CLI. On TCP the page is
// read-only unless a request carries the dashboard token: `Authorization: Bearer TOKEN`, or the
// HttpOnly SameSite=Strict cookie that `POST /v1/login` sets; never a URL query (URLs end up in
// logs and browser history). The token is written at start into the runtime directory, mode 0640
// (the emperor's user, and the control group); it is read again whenever that file changes, so
// writing a new one into the file rotates it at once, and an emptied or removed file refuses all.
//
// On both, a state-changing request from a browser must come from the dashboard's own origin:
// `Sec-Fetch-Site` and `Origin`, when sent, must say so, and the custom header `X-Emperor-Request`
// (which no cross-origin page can send without a CORS preflight, which is never granted) must be
// there. `Host` must be an address or `localhost` (or the name given to `--dashboard`), so a page
// on another name that resolves to this machine (DNS rebinding) is refused too.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  chownSync,
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { ControlError } from './errors.js';

export const TOKEN_FILE = 'dashboard.token';
export const COOKIE = 'emperor_dashboard';
/** A token shorter than this in the file is taken as none (a mistake, not a secret). */
const MIN_TOKEN_LENGTH = 16;

/** Writes a fresh token (mode 0640, group `gid` when given); returns the file's path. */
export function writeToken(runtimeDir: string, gid?: number): string {
  const path = join(runtimeDir, TOKEN_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o640);
  try {
    writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
  } finally {
    closeSync(fd);
  }
  if (gid !== undefined) chownSync(tmp, -1, gid);
  renameSync(tmp, path);
  return path;
}

/** The token in `path`, read again when the file changes. */
export class TokenFile {
  readonly path: string;
  #key = '';
  #token: Buffer | undefined;

  constructor(path: string) {
    this.path = path;
  }

  matches(candidate: string | undefined): boolean {
    const token = this.#read();
    if (!token || candidate === undefined) return false;
    const given = Buffer.from(candidate);
    return given.length === token.length && timingSafeEqual(given, token);
  }

  #read(): Buffer | undefined {
    let key: string;
    try {
      const st = statSync(this.path);
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
    if (key !== this.#key) {
      this.#key = key;
      try {
        const text = readFileSync(this.path, 'utf8').trim();
        this.#token = text.length >= MIN_TOKEN_LENGTH ? Buffer.from(text) : undefined;
      } catch {
        this.#token = undefined;
      }
    }
    return this.#token;
  }
}

/** The token a request presents, and how: a bearer header, or the login cookie. */
export function presentedToken(
  headers: IncomingHttpHeaders,
): { token: string; via: 'bearer' | 'cookie' } | undefined {
  const auth = headers.authorization;
  const bearer = auth === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
  if (bearer !== undefined) return { token: bearer, via: 'bearer' };
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE)
      return { token: part.slice(eq + 1).trim(), via: 'cookie' };
  }
  return undefined;
}

/** The login cookie: sent only to this origin, never to scripts, never with a cross-site request. */
export function loginCookie(token: string): string {
  return `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

export function logoutCookie(): string {
  return `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/**
 * Refuses a `Host` that is neither an address, `localhost`, nor `allowedName`: another name
 * resolving here is a DNS-rebinding page, same-origin to itself. Absent (a unix socket client) is fine.
 */
export function checkHost(headers: IncomingHttpHeaders, allowedName?: string): void {
  const host = headers.host;
  if (host === undefined) return;
  const name = (/^\[([^\]]+)\](?::\d+)?$/.exec(host)?.[1] ?? host.replace(/:\d+$/, '')).toLowerCase();
  if (isIP(name) !== 0 || name === 'localhost' || name === allowedName?.toLowerCase()) return;
  throw new ControlError(
    'EMP_CONTROL_FORBIDDEN',
    `refused: Host \`${host.slice(0, 100)}\` is not this dashboard's address; use its IP address or localhost`,
  );
}

/** A request from a browser page: it sends these, the CLI and curl do not. */
export function fromBrowser(headers: IncomingHttpHeaders): boolean {
  return headers.origin !== undefined || headers['sec-fetch-site'] !== undefined;
}

/** Refuses a state-changing request that a page of another origin could have made. */
export function checkSameOrigin(headers: IncomingHttpHeaders, requireMark: boolean): void {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    throw crossSite(`the request comes from another site (Sec-Fetch-Site: ${site.slice(0, 30)})`);
  const origin = headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host !== headers.host)
      throw crossSite(`the request comes from another origin (${origin.slice(0, 100)})`);
  }
  if (requireMark && headers['x-emperor-request'] === undefined)
    throw crossSite('a browser request that changes state must carry the X-Emperor-Request header');
}

function crossSite(why: string): ControlError {
  return new ControlError('EMP_CONTROL_FORBIDDEN', `refused: ${why}`);
}
