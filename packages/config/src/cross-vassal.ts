// Problems that no single file shows: one vassal name defined twice, two vassals owning one
// address. `emperor check` runs crossVassalIssues over the files given; the daemon keeps a
// SocketClaims of the vassals it runs. Both apply one rule: the vassal that claimed an address
// first keeps it, and the newcomer is refused whole, naming the holder.
import type { ConfigIssue } from './issue.js';
import { socketsConflict } from './socket-address.js';
import type { SocketSpec, VassalConfig } from './types.js';

export interface CheckedVassal {
  /** The file's path as it should be shown in messages. */
  readonly file: string;
  readonly name: string;
  /** Undefined when the file itself is invalid: only its name takes part. */
  readonly config: VassalConfig | undefined;
  /** Modification time of the file (ms): without a running emperor, the older file came first. */
  readonly mtimeMs?: number | undefined;
}

export interface SocketHolder {
  readonly name: string;
  /** The holder's file as it should be shown in messages. */
  readonly file: string;
}

export interface SocketClash {
  /** The newcomer's socket. */
  readonly socket: SocketSpec;
  /** The holder's socket it overlaps. */
  readonly held: SocketSpec;
  readonly holder: SocketHolder;
}

/** Who owns which address, by vassal name; a vassal's claims can be replaced or dropped. */
export class SocketClaims {
  readonly #byAddress = new Map<string, Map<string, { holder: SocketHolder; sockets: SocketSpec[] }>>();
  readonly #addressesOf = new Map<string, string[]>();

  /** Overlaps of `sockets` with the claims of other vassals than `name`. */
  clashes(name: string, sockets: readonly SocketSpec[]): SocketClash[] {
    const found: SocketClash[] = [];
    for (const socket of sockets) {
      for (const [other, claim] of this.#byAddress.get(addressKey(socket)) ?? []) {
        if (other === name) continue;
        const held = claim.sockets.find((h) => socketsConflict(socket, h));
        if (held !== undefined) {
          found.push({ socket, held, holder: claim.holder });
          break; // one holder named per socket is enough to act on
        }
      }
    }
    return found;
  }

  /** `holder` now owns `sockets`, instead of what it owned before. */
  set(holder: SocketHolder, sockets: readonly SocketSpec[]): void {
    this.delete(holder.name);
    const keys: string[] = [];
    for (const socket of sockets) {
      const key = addressKey(socket);
      let claims = this.#byAddress.get(key);
      if (claims === undefined) {
        claims = new Map();
        this.#byAddress.set(key, claims);
      }
      const mine = claims.get(holder.name);
      if (mine === undefined) claims.set(holder.name, { holder, sockets: [socket] });
      else mine.sockets.push(socket);
      keys.push(key);
    }
    this.#addressesOf.set(holder.name, keys);
  }

  delete(name: string): void {
    for (const key of this.#addressesOf.get(name) ?? []) {
      const claims = this.#byAddress.get(key);
      claims?.delete(name);
      if (claims?.size === 0) this.#byAddress.delete(key);
    }
    this.#addressesOf.delete(name);
  }
}

/**
 * Every address a vassal listens on: its owned sockets, and those uWSGI binds itself (a
 * `[uwsgi]` file's addresses the emperor does not own), which clash just the same. What both
 * `check` and the daemon claim for it.
 */
export function claimedSockets(config: VassalConfig): SocketSpec[] {
  const bound = (config.uwsgi?.listeners ?? []).flatMap((l) =>
    !l.owned && l.bound !== undefined ? [l.bound] : [],
  );
  return [...config.sockets, ...bound];
}

/** Sockets can only conflict within one unix path or one TCP port. */
function addressKey(s: SocketSpec): string {
  return s.kind === 'unix' ? `unix:${s.path}` : `tcp:${s.port}`;
}

/** The error of a newcomer refused an address that `clash.holder` owns. */
export function socketConflictIssue(file: string, clash: SocketClash): ConfigIssue {
  const at = clash.held.line === undefined ? '' : `:${clash.held.line}`;
  return {
    code: 'EMP_VASSAL_SOCKET_CONFLICT',
    severity: 'error',
    file,
    line: clash.socket.line,
    key: 'socket',
    message: `socket \`${clash.socket.address}\` overlaps \`${clash.held.address}\` of vassal \`${clash.holder.name}\` (${clash.holder.file}${at}), which claimed it first; only one vassal can own an address`,
  };
}

/**
 * Issues across the files given. Sockets are claimed in the order the files were last
 * modified, older first (ties in the order given): what a running emperor would have done had
 * the files appeared one by one, so `check` blames the file the emperor refuses.
 */
export function crossVassalIssues(vassals: readonly CheckedVassal[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const byName = new Map<string, CheckedVassal>();
  for (const v of vassals) {
    const first = byName.get(v.name);
    if (first !== undefined) {
      issues.push({
        code: 'EMP_VASSAL_DUPLICATE',
        severity: 'error',
        file: v.file,
        line: undefined,
        key: undefined,
        message: `vassal \`${v.name}\` is also defined by ${first.file}; vassal names must be unique`,
      });
    } else {
      byName.set(v.name, v);
    }
  }
  const claims = new SocketClaims();
  const byAge = [...byName.values()].sort((a, b) => (a.mtimeMs ?? 0) - (b.mtimeMs ?? 0));
  for (const v of byAge) {
    const sockets = v.config === undefined ? [] : claimedSockets(v.config);
    const clashes = claims.clashes(v.name, sockets);
    // Refused whole, as the daemon refuses it: its other sockets are not claimed either.
    if (clashes.length === 0) claims.set({ name: v.name, file: v.file }, sockets);
    for (const clash of clashes) issues.push(socketConflictIssue(v.file, clash));
  }
  return issues;
}
