// `emperor top`'s view of the daemon, from `GET /v1/events`: the whole status once, then only the
// vassals that changed and, every 3 s, each vassal's CPU and memory. Polling `/v1/status` instead
// meant parsing every vassal's whole status each refresh (at 1000 vassals ~430 KB every 2 s, and
// ~94 MiB of RSS for top).
import type { IncomingMessage } from 'node:http';
import type { StatusSnapshot, VassalStatus } from '@emperor/daemon';
import { DaemonError, open } from '../control-client.js';
import type { TopVassal } from './view.js';

interface Sample {
  readonly emperor: { readonly uptime_s: number };
  readonly vassals: Record<string, [number | null, number | null]>;
}

export interface Feed {
  /** The status as last told, with each vassal's latest sample as `usage`. */
  snapshot(): StatusSnapshot | undefined;
  /** Resolves when the stream ends (the daemon stopped, or the connection broke). */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens the feed; undefined from a daemon without `/v1/events` (older than the dashboard). */
export async function openFeed(socket: string, onChange: () => void): Promise<Feed | undefined> {
  const res: IncomingMessage = await open(socket, '/v1/events', { noTimeout: true });
  if (res.statusCode === 404) {
    res.resume();
    return undefined;
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new DaemonError(
      res.statusCode ?? 0,
      'EMP_CONTROL_BAD_ANSWER',
      `events: HTTP ${res.statusCode ?? '?'}`,
    );
  }
  let emperor: StatusSnapshot['emperor'] | undefined;
  const vassals = new Map<string, TopVassal>();
  let list: TopVassal[] | undefined;
  const apply = (event: string, data: string): void => {
    if (event === 'status') {
      const s = JSON.parse(data) as StatusSnapshot;
      emperor = s.emperor;
      const usage = new Map([...vassals].map(([n, v]) => [n, v.usage]));
      vassals.clear();
      for (const v of s.vassals) vassals.set(v.name, withUsage(v, usage.get(v.name)));
    } else if (event === 'vassals') {
      const d = JSON.parse(data) as { vassals: VassalStatus[]; removed: string[] };
      for (const name of d.removed) vassals.delete(name);
      for (const v of d.vassals) vassals.set(v.name, withUsage(v, vassals.get(v.name)?.usage));
    } else if (event === 'sample') {
      const s = JSON.parse(data) as Sample;
      if (emperor) emperor = { ...emperor, uptime_s: s.emperor.uptime_s };
      for (const [name, u] of Object.entries(s.vassals)) {
        const v = vassals.get(name);
        if (v) vassals.set(name, { ...v, usage: u });
      }
    } else return;
    list = undefined;
    onChange();
  };

  let buffered = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) apply(event, data.join('\n'));
    }
  });
  const ended = new Promise<void>((resolve) => {
    res.once('close', resolve);
    res.on('error', () => undefined);
  });
  return {
    snapshot() {
      if (!emperor) return undefined;
      list ??= [...vassals.values()];
      return { emperor, vassals: list };
    },
    ended,
    close() {
      res.destroy();
    },
  };
}

function withUsage(v: VassalStatus, usage: TopVassal['usage']): TopVassal {
  return usage === undefined ? v : { ...v, usage };
}
