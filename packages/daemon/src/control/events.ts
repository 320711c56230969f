// `GET /v1/events`: a Server-Sent Events stream for live views (the dashboard; `emperor top` could
// use it too). The first event is the whole status; after it, only what changed:
//
//   event: status   data: StatusSnapshot                      (once, first)
//   event: vassals  data: {"vassals": [VassalStatus...], "removed": [name...]}
//   event: sample   data: {"at": ms, "emperor": {...}, "vassals": {name: [cpu %, rss bytes]}}
//
// Changes are found by comparing a cheap fingerprint of a vassal (no /proc read) after each of its
// runner's events (coalesced), and once a second by comparing which runner and which pending
// config error each name has (files with errors have no runner to tell us): by reference, so an
// unchanged emperor costs no allocation. Only the changed vassals' status is built. Samples come from the history, which samples while a
// stream is open. With no stream open, nothing here runs: the idle emperor stays idle.
import type { ServerResponse } from 'node:http';
import type { Emperor } from '../emperor.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import type { History, LatestSample } from './history.js';
import type { StatusSnapshot } from './snapshot.js';

/** Changes seen in this long are sent as one event. */
const COALESCE_MS = 100;
const POLL_MS = 1_000;
const KEEPALIVE_MS = 15_000;
/** A reader this far behind is dropped; its EventSource reconnects and starts from a full status. */
const MAX_BACKLOG = 4 * 1024 * 1024;

interface Stream {
  readonly res: ServerResponse;
  readonly samples: boolean;
}

export interface EventHubOptions {
  readonly status: (names?: readonly string[]) => StatusSnapshot | undefined;
  readonly history: History;
  readonly health: () => Record<string, unknown>;
}

export class EventHub {
  readonly #opts: EventHubOptions;
  readonly #streams = new Set<Stream>();
  #emperor: Emperor | undefined;
  /** The fingerprint of every vassal as last sent. */
  readonly #sent = new Map<string, string>();
  /** Each name's runner and pending config error as last seen, compared by reference. */
  readonly #refs = new Map<string, { runner: unknown; pending: unknown }>();
  /** Names whose runner handled an event since the last flush. */
  readonly #dirty = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #unwatch: (() => void) | undefined;
  #poll: NodeJS.Timeout | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #pending: NodeJS.Timeout | undefined;

  constructor(opts: EventHubOptions) {
    this.#opts = opts;
  }

  attach(emperor: Emperor): void {
    this.#emperor = emperor;
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Answers an events request: the whole status now, then changes until the client leaves. */
  open(res: ServerResponse, { samples }: { samples: boolean }): void {
    const emperor = this.#emperor;
    if (!emperor) return;
    if (this.#streams.size === 0) this.#begin(emperor);
    else this.#flush(); // older streams get what changed before this one's status
    const stream: Stream = { res, samples };
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.socket?.setTimeout(0);
    res.write(`retry: 2000\n\n`);
    this.#streams.add(stream);
    // The first sample's /proc pass blocks the loop for tens of ms at 1000 vassals: only once the
    // status (~430 KB at 1000) is handed to the kernel, so the page paints without waiting for it.
    res.write(frame('status', this.#opts.status()), () => {
      if (!samples || !this.#streams.has(stream)) return;
      if (this.#unwatch === undefined)
        this.#unwatch = this.#opts.history.watch((s) => {
          this.#sample(s);
        });
      else {
        const latest = this.#opts.history.latest();
        if (latest.at > 0) write(stream, this.#sampleFrame(latest));
      }
    });
    res.once('close', () => {
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.#end();
      else if (![...this.#streams].some((s) => s.samples)) {
        this.#unwatch?.();
        this.#unwatch = undefined;
      }
    });
  }

  close(): void {
    for (const s of this.#streams) s.res.end();
    this.#streams.clear();
    this.#end();
  }

  #begin(emperor: Emperor): void {
    this.#refs.clear();
    this.#dirty.clear();
    this.#sent.clear();
    this.#changedRefs(emperor);
    for (const name of this.#refs.keys()) this.#sent.set(name, this.#fingerprint(emperor, name));
    this.#unsubscribe = emperor.subscribe((runner) => {
      this.#dirty.add(runner.vassal.name);
      this.#pending ??= setTimeout(() => {
        this.#pending = undefined;
        this.#flush();
      }, COALESCE_MS);
    });
    this.#poll = setInterval(() => {
      this.#flush();
    }, POLL_MS);
    this.#keepalive = setInterval(() => {
      for (const s of this.#streams) s.res.write(': keep-alive\n\n');
    }, KEEPALIVE_MS);
  }

  #end(): void {
    this.#unsubscribe?.();
    this.#unwatch?.();
    clearInterval(this.#poll);
    clearInterval(this.#keepalive);
    clearTimeout(this.#pending);
    this.#unsubscribe = this.#unwatch = this.#poll = this.#keepalive = this.#pending = undefined;
    this.#sent.clear();
    this.#refs.clear();
    this.#dirty.clear();
  }

  /** Sends the status of every vassal whose fingerprint changed, and the names of those gone. */
  #flush(): void {
    const emperor = this.#emperor;
    if (!emperor || this.#streams.size === 0) return;
    const { candidates, removed } = this.#changedRefs(emperor);
    for (const name of this.#dirty) if (this.#refs.has(name)) candidates.add(name);
    this.#dirty.clear();
    const changed: string[] = [];
    for (const name of candidates) {
      const print = this.#fingerprint(emperor, name);
      if (this.#sent.get(name) === print) continue;
      this.#sent.set(name, print);
      changed.push(name);
    }
    for (const name of removed) this.#sent.delete(name);
    if (changed.length === 0 && removed.length === 0) return;
    changed.sort();
    const body = { vassals: changed.length > 0 ? (this.#opts.status(changed)?.vassals ?? []) : [], removed };
    const text = frame('vassals', body);
    for (const s of this.#streams) write(s, text);
  }

  /** Names whose runner or pending error is another object than last time, and names gone. */
  #changedRefs(emperor: Emperor): { candidates: Set<string>; removed: string[] } {
    const { runners, errors, duplicates } = emperor.reconciler;
    const candidates = new Set<string>();
    const see = (name: string): void => {
      const runner = runners.get(name);
      const pending = errors.get(name) ?? duplicates.get(name);
      const last = this.#refs.get(name);
      if (last !== undefined && last.runner === runner && last.pending === pending) return;
      this.#refs.set(name, { runner, pending });
      candidates.add(name);
    };
    for (const name of runners.keys()) see(name);
    for (const name of errors.keys()) see(name);
    for (const name of duplicates.keys()) see(name);
    const removed: string[] = [];
    for (const name of this.#refs.keys())
      if (!runners.has(name) && !errors.has(name) && !duplicates.has(name)) removed.push(name);
    for (const name of removed) this.#refs.delete(name);
    return { candidates, removed };
  }

  #fingerprint(emperor: Emperor, name: string): string {
    const { runners, errors, duplicates } = emperor.reconciler;
    const runner = runners.get(name);
    const pending = errors.get(name) ?? duplicates.get(name);
    const issues = pending ? pending.issues.map((i) => `${i.line ?? ''}:${i.message}`).join('\n') : '';
    return runner ? `${fingerprint(runner)}\n${issues}` : `!${pending?.path ?? ''}\n${issues}`;
  }

  #sample(latest: LatestSample): void {
    const text = this.#sampleFrame(latest);
    for (const s of this.#streams) if (s.samples) write(s, text);
  }

  #sampleFrame(latest: LatestSample): string {
    const health = JSON.stringify(this.#opts.health());
    return `event: sample\ndata: {"at":${latest.at},"emperor":${health},"vassals":${latest.vassalsJson}}\n\n`;
  }
}

/** What status shows of a vassal, less what changes all the time (CPU, memory, uptime). */
function fingerprint(runner: VassalRunner): string {
  const v = runner.vassal;
  const parts: unknown[] = [
    v.state,
    v.generation,
    v.restarts,
    v.bound,
    v.reason,
    v.lastExit?.at,
    v.backoffUntil,
    v.config.file,
  ];
  for (const i of v.instances) parts.push(i.index, i.generation, i.pid, i.state);
  for (const d of v.sides) parts.push(d.index, d.pid, d.state, d.restarts);
  return parts.join('|');
}

function frame(event: string, body: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(body)}\n\n`;
}

function write(stream: Stream, text: string): void {
  if (stream.res.writableLength > MAX_BACKLOG) {
    stream.res.destroy();
    return;
  }
  stream.res.write(text);
}
