// `GET /v1/history`: the last 15 minutes of each vassal, for `emperor top` and dashboards.
//
// Two kinds of record, kept apart for the idle-CPU goal (SPEC §7: an idle emperor makes no
// system call): state changes and restarts are recorded as they happen, from the runners' own
// events, at no cost; CPU, memory and accept queues need a /proc pass, so they are sampled only
// while someone reads the history (LEASE_MS after the last request) and not at all otherwise.
//
// Memory is bounded: one ring of SAMPLES times, and per vassal and instance slot a Float32Array
// of SAMPLES CPU and SAMPLES RSS values (2.4 KB), plus a ring of accept-queue lengths for vassals
// with TCP sockets (1.2 KB) and at most MAX_EVENTS state changes. Arrays exist only once sampling
// has started, and are dropped WINDOW_MS after it stopped, when all they hold is outdated.
import type { Emperor } from '../emperor.js';
import type { VassalRunner } from '../runner/vassal-runner.js';
import { tcpAcceptQueues } from '../os/connections.js';
import { CpuSampler } from './cpu-sampler.js';
import { instanceUsage } from './instance-usage.js';

export const INTERVAL_MS = 3_000;
export const SAMPLES = 300;
export const WINDOW_MS = INTERVAL_MS * SAMPLES;
/** Sampling goes on this long after the last history request (`emperor top` asks every 2 s). */
export const LEASE_MS = 60_000;
const MAX_EVENTS = 32;

export interface HistoryEvent {
  readonly at: string;
  readonly state: string;
  readonly restarts: number;
}

export interface InstanceHistory {
  /** The instance slot (`index` in status): one series across the generations that fill it. */
  readonly index: number;
  readonly cpu_percent: (number | null)[];
  readonly rss_bytes: (number | null)[];
}

export interface VassalHistory {
  readonly name: string;
  /** Sums over the instances; null where the vassal had no process (or did not exist). */
  readonly cpu_percent: (number | null)[];
  readonly rss_bytes: (number | null)[];
  /** Connections waiting in the accept queues of its TCP sockets; null without TCP sockets. */
  readonly waiting: (number | null)[] | null;
  readonly instances: InstanceHistory[];
  /** State changes and restarts, oldest first (at most MAX_EVENTS). */
  readonly events: HistoryEvent[];
}

export interface HistorySnapshot {
  readonly interval_s: number;
  readonly window_s: number;
  /** CPU and memory are sampled until then (LEASE_MS after the last read). */
  readonly sampling_until: string;
  /** Epoch milliseconds of each sample, oldest first; every series has one value per time. */
  readonly times: number[];
  readonly vassals: VassalHistory[];
}

/**
 * The newest sample: epoch ms, and per vassal [CPU %, RSS bytes] summed over its instances, as the
 * text of a JSON object (`{"web":[1.5,20480000],...}`): written as text, not built as an object to
 * be stringified, because a dashboard gets one every 3 s and at 1000 vassals the object was most
 * of the garbage a sample made.
 */
export interface LatestSample {
  readonly at: number;
  readonly vassalsJson: string;
}

interface Slot {
  /** CPU % at [i], RSS bytes at [SAMPLES + i]; NaN where the slot had no process. */
  readonly values: Float32Array;
  lastTick: number;
}

/** A state change as kept: epoch ms, not an ISO string, until it is read (1000 vassals idle). */
interface Change {
  readonly at: number;
  readonly state: string;
  readonly restarts: number;
}

interface Series {
  readonly events: Change[];
  /** The name as a JSON key (`"web":`), made once for `latest`. */
  key: string | undefined;
  /** Created by the first sample: a vassal nobody watched holds only its changes. */
  slots: Map<number, Slot> | undefined;
  waiting: Float32Array | undefined;
}

export class History {
  readonly #now: () => number;
  readonly #sampler: CpuSampler;
  readonly #series = new Map<string, Series>();
  #emperor: Emperor | undefined;
  /** Sample times (epoch ms), a ring indexed by tick % SAMPLES; `#ticks` samples taken. */
  #times: Float64Array | undefined;
  #ticks = 0;
  #leaseUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #dropTimer: NodeJS.Timeout | undefined;
  /** Live readers (`/v1/events`): sampling goes on while there is one, each told of every sample. */
  readonly #watchers = new Set<(sample: LatestSample) => void>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#sampler = new CpuSampler(now);
  }

  attach(emperor: Emperor): void {
    this.#emperor = emperor;
  }

  /** Records a state change or restart of `runner` (called after every event it handled). */
  observe(runner: VassalRunner): void {
    const v = runner.vassal;
    if (runner.disposed) {
      // Unless a new runner of the same name took its place already (a file removed and re-added).
      const current = this.#emperor?.reconciler.runners.get(v.name);
      if (current === undefined || current === runner) this.#series.delete(v.name);
      return;
    }
    const s = this.#get(v.name);
    const last = s.events.at(-1);
    if (last?.state === v.state && last.restarts === v.restarts) return;
    if (s.events.length >= MAX_EVENTS) s.events.shift();
    s.events.push({ at: this.#now(), state: v.state, restarts: v.restarts });
  }

  /** The history of `names`, its last `points` samples; (re)starts sampling for LEASE_MS. */
  read(names: readonly string[], points: number = SAMPLES): HistorySnapshot {
    this.#leaseUntil = this.#now() + LEASE_MS;
    this.#start();
    const count = Math.min(points, this.#ticks, SAMPLES);
    const first = this.#ticks - count;
    const times: number[] = [];
    for (let t = first; t < this.#ticks; t++) times.push(this.#times?.[t % SAMPLES] ?? 0);
    return {
      interval_s: INTERVAL_MS / 1000,
      window_s: WINDOW_MS / 1000,
      sampling_until: new Date(this.#leaseUntil).toISOString(),
      times,
      vassals: names.map((name) => this.#vassal(name, first, count)),
    };
  }

  /**
   * Calls `listener` after every sample from now on, sampling for as long as one listens (and
   * LEASE_MS after); returns the unsubscribe.
   */
  watch(listener: (sample: LatestSample) => void): () => void {
    this.#watchers.add(listener);
    this.#leaseUntil = Math.max(this.#leaseUntil, this.#now() + LEASE_MS);
    this.#start();
    return () => {
      this.#watchers.delete(listener);
      this.#leaseUntil = Math.max(this.#leaseUntil, this.#now() + LEASE_MS);
    };
  }

  /** The newest sample of every vassal that has one: summed CPU % and RSS bytes. */
  latest(): LatestSample {
    const parts: string[] = [];
    const pos = (this.#ticks - 1) % SAMPLES;
    if (this.#ticks > 0)
      for (const [name, s] of this.#series) {
        let cpu = NaN;
        let rss = NaN;
        if (s.slots !== undefined)
          for (const slot of s.slots.values()) {
            const c = slot.values[pos] ?? NaN;
            const r = slot.values[SAMPLES + pos] ?? NaN;
            if (!Number.isNaN(c)) cpu = (Number.isNaN(cpu) ? 0 : cpu) + c;
            if (!Number.isNaN(r)) rss = (Number.isNaN(rss) ? 0 : rss) + r;
          }
        s.key ??= `${JSON.stringify(name)}:`;
        parts.push(
          `${s.key}[${Number.isNaN(cpu) ? 'null' : Math.round(cpu * 10) / 10},${Number.isNaN(rss) ? 'null' : Math.round(rss)}]`,
        );
      }
    return { at: this.#lastTime(), vassalsJson: `{${parts.join(',')}}` };
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    // Older samples than the window are outdated: start over rather than show a gap as data.
    if (this.#times !== undefined && this.#now() - this.#lastTime() > WINDOW_MS) this.#drop();
    this.#tick();
    this.#timer = setInterval(() => {
      this.#tick();
    }, INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stops sampling and its timers (the control server closes). */
  close(): void {
    this.#watchers.clear();
    clearInterval(this.#timer);
    clearTimeout(this.#dropTimer);
    this.#timer = undefined;
    this.#dropTimer = undefined;
  }

  #get(name: string): Series {
    let s = this.#series.get(name);
    if (!s)
      this.#series.set(name, (s = { events: [], key: undefined, slots: undefined, waiting: undefined }));
    return s;
  }

  #lastTime(): number {
    return this.#ticks === 0 ? 0 : (this.#times?.[(this.#ticks - 1) % SAMPLES] ?? 0);
  }

  #drop(): void {
    this.#times = undefined;
    this.#ticks = 0;
    for (const s of this.#series.values()) {
      s.slots = undefined;
      s.waiting = undefined;
    }
  }

  /** One sample of every vassal: one /proc scan, and /proc/net/tcp when a vassal has TCP sockets. */
  #tick(): void {
    const emperor = this.#emperor;
    const at = this.#now();
    if (!emperor) return;
    if (at > this.#leaseUntil && this.#watchers.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#dropTimer = setTimeout(() => {
        this.#drop();
      }, WINDOW_MS);
      this.#dropTimer.unref();
      return;
    }
    const runners = emperor.reconciler.runners;
    let tcp = false;
    for (const r of runners.values()) if (r.vassal.config.sockets.some((s) => s.kind === 'tcp')) tcp = true;
    const usage = instanceUsage(emperor, this.#sampler, runners.values(), { sides: false });
    const queues = tcp ? tcpAcceptQueues() : new Map<number, number>();

    this.#times ??= new Float64Array(SAMPLES);
    const tick = this.#ticks;
    const pos = tick % SAMPLES;
    this.#times[pos] = at;
    for (const name of this.#series.keys()) if (!runners.has(name)) this.#series.delete(name);
    // Written in place, no object per vassal: at 1000 vassals every 3 s, garbage is what makes V8
    // grow its heap for good (a slot's `lastTick === tick` says it has a value of this tick).
    for (const [name, runner] of runners) {
      const v = runner.vassal;
      const s = this.#get(name);
      for (const i of v.instances) {
        const u = i.pid === undefined ? undefined : usage.get(i.pid);
        if (!u) continue;
        s.slots ??= new Map();
        let slot = s.slots.get(i.index);
        if (!slot)
          s.slots.set(i.index, (slot = { values: new Float32Array(2 * SAMPLES).fill(NaN), lastTick: -1 }));
        // Two generations share a slot while one replaces the other: their sum.
        const first = slot.lastTick !== tick;
        slot.values[pos] = u.cpuPercent + (first ? 0 : (slot.values[pos] ?? 0));
        slot.values[SAMPLES + pos] = u.rssBytes + (first ? 0 : (slot.values[SAMPLES + pos] ?? 0));
        slot.lastTick = tick;
      }
      if (s.slots !== undefined)
        for (const [index, slot] of s.slots) {
          if (slot.lastTick === tick) continue;
          // A slot with no process for a whole window holds nothing worth its memory.
          if (tick - slot.lastTick >= SAMPLES) s.slots.delete(index);
          else {
            slot.values[pos] = NaN;
            slot.values[SAMPLES + pos] = NaN;
          }
        }
      const sockets = v.config.sockets;
      if (sockets.length > 0 && sockets.some((sock) => sock.kind === 'tcp')) {
        s.waiting ??= new Float32Array(SAMPLES).fill(NaN);
        let waiting = 0;
        for (const sock of sockets) if (sock.kind === 'tcp') waiting += queues.get(sock.port) ?? 0;
        s.waiting[pos] = v.bound ? waiting : NaN;
      } else s.waiting = undefined;
    }
    this.#ticks = tick + 1;
    if (this.#watchers.size > 0) {
      const sample = this.latest();
      for (const w of this.#watchers) w(sample);
    }
  }

  #vassal(name: string, first: number, count: number): VassalHistory {
    const s = this.#series.get(name);
    const cpu: (number | null)[] = new Array<number | null>(count).fill(null);
    const rss: (number | null)[] = new Array<number | null>(count).fill(null);
    const instances: InstanceHistory[] = [];
    for (const [index, slot] of [...(s?.slots ?? [])].sort((a, b) => a[0] - b[0])) {
      const icpu: (number | null)[] = [];
      const irss: (number | null)[] = [];
      for (let k = 0; k < count; k++) {
        const pos = (first + k) % SAMPLES;
        const c = slot.values[pos] ?? NaN;
        const r = slot.values[SAMPLES + pos] ?? NaN;
        icpu.push(Number.isNaN(c) ? null : Math.round(c * 10) / 10);
        irss.push(Number.isNaN(r) ? null : Math.round(r));
        if (!Number.isNaN(c)) cpu[k] = Math.round(((cpu[k] ?? 0) + c) * 10) / 10;
        if (!Number.isNaN(r)) rss[k] = Math.round((rss[k] ?? 0) + r);
      }
      instances.push({ index, cpu_percent: icpu, rss_bytes: irss });
    }
    let waiting: (number | null)[] | null = null;
    if (s?.waiting) {
      waiting = [];
      for (let k = 0; k < count; k++) {
        const w = s.waiting[(first + k) % SAMPLES] ?? NaN;
        waiting.push(Number.isNaN(w) ? null : w);
      }
    }
    return {
      name,
      cpu_percent: cpu,
      rss_bytes: rss,
      waiting,
      instances,
      events: (s?.events ?? []).map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    };
  }
}
