// Problems that no single file shows: one vassal name defined twice, two vassals owning one
// address. `emperor check` runs this over the files given; the daemon can run it over a scan.
import type { ConfigIssue } from './issue.js';
import { SocketIndex } from './socket-address.js';
import type { SocketSpec, VassalConfig } from './types.js';

export interface CheckedVassal {
  /** The file's path as it should be shown in messages. */
  readonly file: string;
  readonly name: string;
  /** Undefined when the file itself is invalid: only its name takes part. */
  readonly config: VassalConfig | undefined;
}

/** Issues for the later of each clashing pair, in the order given. */
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
  const index = new SocketIndex<{ vassal: CheckedVassal; socket: SocketSpec }>();
  for (const v of vassals) {
    // A file's own overlaps are reported by its parse; here only clashes with other vassals count.
    const own = new SocketIndex<true>();
    for (const socket of v.config?.sockets ?? []) {
      if (own.claim(socket, true) !== undefined) continue;
      const clash = index.claim(socket, { vassal: v, socket });
      if (clash !== undefined) {
        issues.push({
          code: 'EMP_VASSAL_SOCKET_CONFLICT',
          severity: 'error',
          file: v.file,
          line: socket.line,
          key: 'socket',
          message: `socket \`${socket.address}\` overlaps \`${clash.socket.address}\` of vassal \`${clash.vassal.name}\` (${clash.vassal.file}${clash.socket.line === undefined ? '' : `:${clash.socket.line}`}); only one vassal can own an address`,
        });
      }
    }
  }
  return issues;
}
