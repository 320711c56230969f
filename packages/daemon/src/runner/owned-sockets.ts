// The listening sockets of one vassal, bound by the emperor and never accepted on: instances get
// them as inherited fds, and they outlive generations, crashes and idle periods (SPEC §4).
import { bindTcp, bindUnix, type ListeningSocket, type Watch } from '@emperor/native';
import type { SocketSpec, VassalConfig } from '@emperor/config';
import { tcpActivity, unixPathsInUse } from '../os/connections.js';

interface Bound {
  readonly key: string;
  readonly spec: SocketSpec;
  readonly socket: ListeningSocket;
}

/** Everything that decides how a socket is bound: the same key keeps the same fd across reloads. */
function bindKey(spec: SocketSpec, config: VassalConfig): string {
  const owner = config.socketOwner;
  return spec.kind === 'tcp'
    ? `tcp:${spec.address}:${config.backlog}`
    : `unix:${spec.path}:${config.backlog}:${config.socketMode}:${owner?.uid ?? ''}:${owner?.gid ?? ''}`;
}

function bindOne(spec: SocketSpec, config: VassalConfig): ListeningSocket {
  if (spec.kind === 'tcp') {
    // `:PORT` is written as host `::`: omitting the host lets the addon fall back to 0.0.0.0.
    const all = spec.address.startsWith(':');
    return bindTcp({ ...(all ? {} : { host: spec.host }), port: spec.port, backlog: config.backlog });
  }
  return bindUnix({
    path: spec.path,
    backlog: config.backlog,
    mode: config.socketMode,
    ...(config.socketOwner?.uid !== undefined ? { uid: config.socketOwner.uid } : {}),
    ...(config.socketOwner?.gid !== undefined ? { gid: config.socketOwner.gid } : {}),
  });
}

export class OwnedSockets {
  #bound: Bound[] = [];
  #watches: Watch[] = [];
  /** TIME_WAIT connections of our ports at the previous probe. */
  #closedBefore = new Set<string>();

  /**
   * Binds the sockets of `config`, keeping any already bound the same way. On failure nothing is
   * kept and the error says which line of which file, and why.
   */
  bind(config: VassalConfig): void {
    const next: Bound[] = [];
    // By address: the same address bound with other options (backlog, mode, owner) is closed
    // first, else the new bind would fail against our own socket.
    const previous = new Map(this.#bound.map((b) => [b.spec.address, b]));
    try {
      for (const spec of config.sockets) {
        const key = bindKey(spec, config);
        const kept = previous.get(spec.address);
        previous.delete(spec.address);
        if (kept?.key === key) {
          next.push({ ...kept, spec });
          continue;
        }
        kept?.socket.close();
        try {
          next.push({ key, spec, socket: bindOne(spec, config) });
        } catch (err) {
          const where = spec.line === undefined ? config.file : `${config.file}:${spec.line}`;
          // The errno code stays data (`bind-failed` carries it): nobody parses the message.
          const { code } = err as NodeJS.ErrnoException;
          throw Object.assign(new Error(`${where}: ${(err as Error).message}`, { cause: err }), { code });
        }
      }
    } catch (err) {
      for (const b of next) b.socket.close(); // idempotent: kept ones are closed again below
      this.close();
      throw err;
    }
    this.unwatch();
    for (const b of previous.values()) b.socket.close();
    this.#bound = next;
  }

  get fds(): number[] {
    return this.#bound.map((b) => b.socket.fd);
  }

  /** LISTEN_FDNAMES entries: the `name=` prefix, else the vassal's name (systemd uses the unit's). */
  names(fallback: string): string[] {
    return this.#bound.map((b) => b.spec.name ?? fallback);
  }

  get addresses(): string[] {
    return this.#bound.map((b) => b.socket.address);
  }

  /** Calls `onClient` once, when a client waits on any socket. */
  watch(onClient: () => void): void {
    this.unwatch();
    let fired = false;
    this.#watches = this.#bound.map((b) =>
      b.socket.watchReadable(() => {
        if (fired) return;
        fired = true;
        this.unwatch();
        onClient();
      }),
    );
  }

  unwatch(): void {
    for (const w of this.#watches) w.close();
    this.#watches = [];
  }

  /**
   * A client waits in a backlog, is connected now, or was served since the previous probe (a
   * connection the server closed shows in TIME_WAIT for a minute: only new ones count).
   */
  busy(): boolean {
    if (this.#bound.some((b) => b.socket.hasPendingConnection())) return true;
    const ports = new Set(this.#bound.flatMap((b) => (b.socket.port === undefined ? [] : [b.socket.port])));
    let busy = false;
    if (ports.size > 0) {
      const tcp = tcpActivity();
      const closed = new Set([...tcp.closed].filter((c) => ports.has(Number(c.slice(0, c.indexOf('|'))))));
      busy = [...ports].some((p) => tcp.open.has(p)) || [...closed].some((c) => !this.#closedBefore.has(c));
      this.#closedBefore = closed;
    }
    if (!busy && this.#bound.some((b) => b.spec.kind === 'unix')) {
      const paths = unixPathsInUse();
      busy = this.#bound.some((b) => b.spec.kind === 'unix' && paths.has(b.spec.path));
    }
    return busy;
  }

  close(): void {
    this.unwatch();
    for (const b of this.#bound) b.socket.close();
    this.#bound = [];
  }
}
