// Prometheus text exposition (version 0.0.4) of the status snapshot and the emperor's own process.
import { VASSAL_STATES } from '../machine/types.js';
import type { StatusSnapshot } from './snapshot.js';

/** Bucket upper bounds in seconds for the latency histograms. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A latency histogram (spawn to ready, file change to reaction), fed by the control server. */
export class Histogram {
  readonly counts = BUCKETS.map(() => 0);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
  }
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderMetrics(
  s: StatusSnapshot,
  ready: Histogram,
  reaction: Histogram,
  startedAt: number,
): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const each = (name: string, value: (v: StatusSnapshot['vassals'][number]) => number | null): void => {
    for (const v of s.vassals) {
      const x = value(v);
      if (x !== null) out.push(`${name}{vassal="${label(v.name)}"} ${x}`);
    }
  };
  family(
    'emperor_vassal_state',
    'gauge',
    'The state of each vassal: 1 for its current state, 0 for the others.',
  );
  for (const v of s.vassals)
    for (const st of VASSAL_STATES)
      out.push(`emperor_vassal_state{vassal="${label(v.name)}",state="${st}"} ${v.state === st ? 1 : 0}`);
  family('emperor_vassal_instances', 'gauge', 'Live processes of the vassal, any generation.');
  each('emperor_vassal_instances', (v) => v.instances.length);
  family('emperor_vassal_generation', 'gauge', 'The generation the vassal serves or is starting.');
  each('emperor_vassal_generation', (v) => v.generation);
  family('emperor_vassal_restarts_total', 'counter', 'Instances restarted after exiting by themselves.');
  each('emperor_vassal_restarts_total', (v) => v.restarts);
  family('emperor_vassal_recycles_total', 'counter', 'Instances replaced for max-rss or max-lifetime.');
  each('emperor_vassal_recycles_total', (v) => v.recycles ?? 0);
  family('emperor_vassal_uptime_seconds', 'gauge', 'Seconds since the serving generation started.');
  each('emperor_vassal_uptime_seconds', (v) => v.uptime_s);
  family('emperor_vassal_rss_bytes', 'gauge', 'Resident memory of the process trees of every instance.');
  each('emperor_vassal_rss_bytes', (v) => sum(v.instances.map((i) => i.rss_bytes)));
  family(
    'emperor_vassal_cpu_seconds_total',
    'counter',
    'CPU time of the live process trees of every instance.',
  );
  each('emperor_vassal_cpu_seconds_total', (v) => sum(v.instances.map((i) => i.cpu_seconds)));
  family(
    'emperor_vassal_last_exit_code',
    'gauge',
    'Exit code of the last instance that exited by itself (-1: killed by a signal).',
  );
  each('emperor_vassal_last_exit_code', (v) => (v.last_exit ? (v.last_exit.code ?? -1) : null));
  family('emperor_vassal_last_exit_timestamp_seconds', 'gauge', 'When an instance last exited by itself.');
  each('emperor_vassal_last_exit_timestamp_seconds', (v) =>
    v.last_exit ? Date.parse(v.last_exit.at) / 1000 : null,
  );
  // Cron jobs, one series per job: `job` is its `cron-<n>` number.
  const jobs = s.vassals.flatMap((v) =>
    (v.cron_jobs ?? []).map((j) => ({ at: `vassal="${label(v.name)}",job="${j.job}"`, j })),
  );
  family(
    'emperor_cron_last_exit_code',
    'gauge',
    'Exit code of the last run of a cron job (-1: killed or not spawned).',
  );
  for (const { at, j } of jobs)
    if (j.last_exit) out.push(`emperor_cron_last_exit_code{${at}} ${j.last_exit.code ?? -1}`);
  family('emperor_cron_last_run_timestamp_seconds', 'gauge', 'When the last run of a cron job started.');
  for (const { at, j } of jobs)
    if (j.last_run)
      out.push(`emperor_cron_last_run_timestamp_seconds{${at}} ${Date.parse(j.last_run) / 1000}`);
  family('emperor_cron_next_run_timestamp_seconds', 'gauge', 'When a cron job runs next.');
  for (const { at, j } of jobs)
    if (j.next_run)
      out.push(`emperor_cron_next_run_timestamp_seconds{${at}} ${Date.parse(j.next_run) / 1000}`);
  family('emperor_cron_running', 'gauge', 'Runs of a cron job going now.');
  for (const { at, j } of jobs) out.push(`emperor_cron_running{${at}} ${j.running.length}`);
  family(
    'emperor_cron_skipped_total',
    'counter',
    'unique-cron runs skipped while the previous one still went.',
  );
  for (const { at, j } of jobs) out.push(`emperor_cron_skipped_total{${at}} ${j.skipped}`);
  family('emperor_vassal_side_daemons', 'gauge', 'Side daemons of the vassal that run now.');
  each('emperor_vassal_side_daemons', (v) => (v.side_daemons ?? []).filter((d) => d.pid !== null).length);
  family('emperor_vassal_config_error', 'gauge', '1 while the vassal file has an error that is not applied.');
  each('emperor_vassal_config_error', (v) => (v.error ? 1 : 0));

  const histogram = (name: string, help: string, h: Histogram): void => {
    family(name, 'histogram', help);
    BUCKETS.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i] ?? 0}`));
    out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  };
  histogram('emperor_instance_ready_seconds', 'Time from spawn to ready, per instance.', ready);
  histogram(
    'emperor_reaction_seconds',
    "Time from a vassal file's first change event to the emperor starting or reloading the vassal.",
    reaction,
  );

  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  family('process_cpu_seconds_total', 'counter', 'CPU time of the emperor process.');
  out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
  family('process_resident_memory_bytes', 'gauge', 'Resident memory of the emperor process.');
  out.push(`process_resident_memory_bytes ${mem.rss}`);
  family('process_heap_bytes', 'gauge', 'V8 heap used by the emperor process.');
  out.push(`process_heap_bytes ${mem.heapUsed}`);
  family('process_start_time_seconds', 'gauge', 'When the emperor started, seconds since the epoch.');
  out.push(`process_start_time_seconds ${Math.floor(startedAt / 1000)}`);
  family('emperor_vassals', 'gauge', 'Vassals known to the emperor.');
  out.push(`emperor_vassals ${s.vassals.length}`);
  return `${out.join('\n')}\n`;
}

function sum(values: readonly (number | null)[]): number | null {
  const known = values.filter((x): x is number => x !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}
