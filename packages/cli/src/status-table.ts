// The `emperor status` table: one row per vassal that fits 80 columns, then, under a vassal that
// needs attention, why (pending config error, failure reason, backoff with its last exit and next
// try, last stderr lines). Pure: the snapshot and the clock in, lines out.
import type { StatusSnapshot, VassalStatus } from '@emperor/daemon';

export interface TableOptions {
  readonly color: boolean;
  readonly width: number;
  readonly now: number;
}

const STDERR_SHOWN = 3;
/** Config errors listed under a vassal; `--json` and `emperor check` have them all. */
const ERRORS_SHOWN = 10;

type Paint = (code: string, text: string) => string;

export const STATE_COLOR: Readonly<Record<string, string>> = {
  running: '32', // green
  waiting: '36', // cyan
  starting: '33',
  reloading: '33',
  stopping: '33',
  backoff: '33;1', // bold yellow
  failed: '31;1', // bold red
  stopped: '2', // dim
};

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)}${units[u] ?? ''}`;
}

function sum(xs: readonly (number | null)[]): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

function pids(v: VassalStatus): string {
  const list = v.instances.map((i) => i.pid).filter((p): p is number => p !== null);
  if (list.length === 0) return '-';
  if (list.length <= 2) return list.join(',');
  return `${list[0] ?? ''} +${list.length - 1}`;
}

function cells(v: VassalStatus): string[] {
  const cpu = sum(v.instances.map((i) => i.cpu_percent));
  const rss = sum(v.instances.map((i) => i.rss_bytes));
  return [
    v.name,
    v.state,
    v.generation > 0 ? String(v.generation) : '-',
    pids(v),
    v.uptime_s === null ? '-' : formatDuration(v.uptime_s),
    String(v.restarts),
    cpu === null ? '-' : cpu >= 100 ? String(Math.round(cpu)) : cpu.toFixed(1),
    rss === null ? '-' : formatBytes(rss),
    v.sockets.length === 0 ? '-' : `${v.sockets_open ? '' : '(closed) '}${v.sockets.join(',')}`,
  ];
}

const HEADERS = ['NAME', 'STATE', 'GEN', 'PID', 'UPTIME', 'RESTARTS', 'CPU%', 'RSS', 'SOCKETS'];
const RIGHT = new Set([2, 4, 5, 6, 7]);
const NAME_MIN = 8;
const SOCKETS_MIN = 7;

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

export function formatTable(snapshot: StatusSnapshot, opts: TableOptions): string[] {
  const paint: Paint = opts.color ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_c, text) => text;
  const width = Math.max(40, opts.width);
  // `missing_dirs` is absent from an older emperor's answer. A watched glob (`DIR/*.ini`) counts
  // as its directory.
  const missing = snapshot.emperor.missing_dirs ?? [];
  const missingLines = [
    ...missing.map((d) => `watched directory ${d} does not exist: its vassals start when it appears`),
    ...(snapshot.emperor.dangling_links ?? []).map(
      (l) => `${l.file} is a symlink to ${l.target}, which does not exist: it starts when that appears`,
    ),
    ...(snapshot.emperor.stores ?? []).flatMap((s) =>
      s.connected
        ? []
        : [
            `etcd ${s.source} is unreachable since ${s.unreachable_since ?? '?'} (${s.error ?? 'no answer'}): ${
              s.from_cache
                ? `running the set cached at revision ${s.revision ?? '?'}`
                : 'every vassal keeps running'
            }; reconnecting`,
          ],
    ),
  ].flatMap((text) => wrap(text, width, '  ').map((l) => paint('33', l)));
  if (snapshot.vassals.length === 0) {
    const present = snapshot.emperor.vassal_dirs.filter(
      (d) => !missing.includes(d.replace(/\/[^/]*[*?[][^/]*$/, '')),
    );
    if (present.length === 0) return missingLines;
    return [`no vassals: drop a NAME.ini file into ${present.join(', ')} to start one`, ...missingLines];
  }
  const rows = snapshot.vassals.map(cells);
  const widths = HEADERS.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  // Shrink the free-text columns until the row fits: sockets first, then names.
  // Two spaces between columns when that fits, else one.
  const natural = widths.reduce((a, b) => a + b, 0);
  const gap = natural + 2 * (widths.length - 1) <= width ? '  ' : ' ';
  const total = (): number => widths.reduce((a, b) => a + b, 0) + gap.length * (widths.length - 1);
  const last = widths.length - 1;
  if (total() > width) widths[last] = Math.max(SOCKETS_MIN, (widths[last] ?? 0) - (total() - width));
  if (total() > width) widths[0] = Math.max(NAME_MIN, (widths[0] ?? 0) - (total() - width));
  const line = (r: readonly string[], color?: (c: number, text: string) => string): string =>
    r
      .map((text, c) => {
        const w = widths[c] ?? 0;
        const t = cut(text, w);
        const padded = c === last ? t : RIGHT.has(c) ? t.padStart(w) : t.padEnd(w);
        return color ? color(c, padded) : padded;
      })
      .join(gap)
      .trimEnd();

  const out = [paint('1', line(HEADERS))];
  snapshot.vassals.forEach((v, k) => {
    out.push(line(rows[k] ?? [], (c, t) => (c === 1 ? paint(STATE_COLOR[v.state] ?? '0', t) : t)));
    for (const d of details(v, opts.now)) {
      const lines = d.oneLine ? [cut(d.text, width)] : wrap(d.text, width, '    ');
      for (const l of lines) out.push(paint(d.color, l));
    }
  });
  out.push(summary(snapshot), ...containmentLines(snapshot, width, paint), ...missingLines);
  return out;
}

interface Detail {
  readonly text: string;
  readonly color: string;
  /** A line of the app's output: cut to one row rather than wrapped. */
  readonly oneLine?: boolean;
}

/** What an operator needs under a vassal that is not simply running. */
export function details(v: VassalStatus, now: number): Detail[] {
  const out: Detail[] = [];
  if (v.error) {
    // `errors` is every error of the file; an emperor started before an upgrade sends only `error`.
    const all = (v.errors as VassalStatus['errors'] | undefined) ?? [];
    const errors = all.length > 0 ? all : [v.error];
    const keeps = v.instances.length > 0 ? ' (not applied: the running generation keeps serving)' : '';
    errors.slice(0, ERRORS_SHOWN).forEach((e, k) => {
      const where = e.line === null ? e.file : `${e.file}:${e.line}`;
      out.push({ text: `  ${where}: ${e.message}${k === 0 ? keeps : ''}`, color: '31' });
    });
    if (errors.length > ERRORS_SHOWN)
      out.push({
        text: `  ... and ${errors.length - ERRORS_SHOWN} more (\`emperor check ${v.file}\` lists them all)`,
        color: '31',
      });
  }
  const exit = v.last_exit ? exitText(v.last_exit) : undefined;
  const inS = (iso: string): string => {
    const s = (Date.parse(iso) - now) / 1000;
    return s < 1 ? 'now' : `in ${formatDuration(s)}`;
  };
  const restarts = `${v.restarts} restart${v.restarts === 1 ? '' : 's'}`;
  if (v.state === 'backoff') {
    const next = v.backoff_until ? `; next try ${inS(v.backoff_until)}` : '';
    out.push({
      text: `  backoff: ${exit ?? 'exited'}, ${restarts}${next} (\`emperor restart ${v.name}\` skips the wait)`,
      color: '33',
    });
  } else if (
    v.state === 'failed' &&
    (v.reason !== null || exit !== undefined) &&
    !(v.error && v.instances.length === 0 && v.generation === 0)
  ) {
    const parts = [`  failed: ${v.reason ?? 'cannot start'}`];
    if (exit) parts.push(`last ${exit}`);
    if (v.retry_at) parts.push(`next try ${inS(v.retry_at)}`);
    out.push({ text: `${parts.join('; ')} (or fix it and \`emperor restart ${v.name}\`)`, color: '31' });
  } else if (v.reason !== null && v.state === 'running') {
    out.push({ text: `  ${v.reason}`, color: '33' });
  } else if (v.quick_exits > 0 && v.state !== 'failed') {
    // Running again, but not for long yet: a crash loop between two of its backoffs.
    const last = exit === undefined ? '' : `; last ${exit}`;
    out.push({
      text: `  crash loop: ${v.quick_exits} quick exit${v.quick_exits === 1 ? '' : 's'} in a row, ${restarts}${last}`,
      color: '33',
    });
  }
  // Side daemons, one line each (`side_daemons` is absent from an older emperor's answer).
  for (const d of v.side_daemons ?? []) {
    const up = d.uptime_s === null ? d.state : `up ${formatDuration(d.uptime_s)}`;
    const pid = d.pid === null ? '-' : String(d.pid);
    const restarts = `${d.restarts} restart${d.restarts === 1 ? '' : 's'}`;
    out.push({
      text: `  attach-${d.index}: pid ${pid}, ${up}, ${restarts}: ${d.command}`,
      color: d.state === 'backoff' ? '33' : '2',
      oneLine: true,
    });
  }
  // Cron jobs, one line each: how the last run ended, when the next is, what goes now.
  for (const j of v.cron_jobs ?? []) {
    const parts: string[] = [];
    const e = j.last_exit;
    if (e) {
      const ago = formatDuration(Math.max(0, (now - Date.parse(e.at)) / 1000));
      const how =
        e.reason !== undefined ? 'not started' : e.signal ? `killed by ${e.signal}` : `exit ${e.code ?? '?'}`;
      parts.push(`last ${how} ${ago} ago`);
    } else parts.push(j.running.length > 0 ? 'first run' : 'not run yet');
    if (j.next_run) parts.push(`next ${inS(j.next_run)}`);
    if (j.running.length > 0) parts.push(`${j.running.length} running`);
    if (j.skipped > 0) parts.push(`${j.skipped} skipped`);
    const failed = e !== null && (e.code !== 0 || e.signal !== null);
    out.push({
      text: `  cron-${j.job}: ${parts.join(', ')}: ${j.command}`,
      color: failed ? '33' : '2',
      oneLine: true,
    });
  }
  // Recycles (`max-rss`, `max-lifetime`): how many, and the last one's reason (absent from an older emperor).
  // The limits are shown before any recycle, so that an operator sees they are in force.
  const limits = v.recycle_limits;
  const set = [
    ...(limits?.max_rss_bytes == null ? [] : [`max-rss ${formatBytes(limits.max_rss_bytes)}`]),
    ...(limits?.max_lifetime_s == null ? [] : [`max-lifetime ${formatDuration(limits.max_lifetime_s)}`]),
  ];
  if (set.length > 0 && !(v.recycles !== undefined && v.recycles > 0 && v.last_recycle))
    out.push({ text: `  recycle at ${set.join(', ')}: none yet`, color: '2', oneLine: true });
  if (v.recycles !== undefined && v.recycles > 0 && v.last_recycle) {
    const times = `${v.recycles} instance${v.recycles === 1 ? '' : 's'}`;
    out.push({
      text: `  recycled ${times}, last at ${v.last_recycle.at.slice(11, 19)}: ${v.last_recycle.reason}`,
      color: '2',
      oneLine: true,
    });
  }
  // The stderr tail explains an exit; under a failure with no exit since the vassal last ran
  // (a program gone missing) it would be an older run's output, shown as if it were the cause.
  if ((v.state === 'backoff' || v.state === 'failed') && exit !== undefined)
    for (const l of v.last_stderr.filter((x) => x.trim() !== '').slice(-STDERR_SHOWN))
      out.push({ text: `  | ${l}`, color: '2', oneLine: true });
  return out;
}

function exitText(e: NonNullable<VassalStatus['last_exit']>): string {
  const what = e.signal ? `killed by ${e.signal}` : `exit code ${e.code ?? '?'}`;
  return `${what} at ${e.at.slice(11, 19)}`;
}

/**
 * Breaks `text` at spaces into lines of at most `width` columns, continuing with `indent`. A
 * word longer than a line (a deep path) loses its middle to an ellipsis, keeping its start and
 * its end (`/srv/…/vassals/cron.ini:3:`): it is never cut in two across lines.
 */
export function wrap(text: string, width: number, indent: string): string[] {
  const lead = /^ */.exec(text)?.[0] ?? '';
  const room = width - indent.length;
  const words = text
    .slice(lead.length)
    .split(/ +/)
    .filter((w) => w !== '')
    .map((w) => (w.length <= room ? w : shorten(w, room)));
  const lines: string[] = [];
  let line = lead;
  for (const w of words) {
    const start = lines.length === 0 ? lead : indent;
    if (line !== start && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent;
    }
    line += line === (lines.length === 0 ? lead : indent) ? w : ` ${w}`;
  }
  if (line.trim() !== '') lines.push(line);
  return lines;
}

/** `abcdefghij` in 7 columns: `abc…hij`. */
function shorten(word: string, width: number): string {
  const keep = Math.max(1, width - 1);
  const head = Math.ceil(keep / 3);
  return `${word.slice(0, head)}…${word.slice(word.length - (keep - head))}`;
}

/**
 * How processes are contained: a short line with cgroups; the reason (in yellow) with the
 * subreaper, where a process that clears its environment can escape. Absent from an older
 * emperor's answer.
 */
function containmentLines(s: StatusSnapshot, width: number, paint: Paint): string[] {
  const c = s.emperor.containment;
  if (c === undefined) return [];
  if (c.mode === 'cgroup') return ['containment: a cgroup per instance'];
  const text = `containment: child subreaper (no cgroup: ${c.reason ?? 'unknown'})`;
  return wrap(text, width, '  ').map((l) => paint('33', l));
}

function summary(s: StatusSnapshot): string {
  const counts = new Map<string, number>();
  for (const v of s.vassals) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
  const errors = s.vassals.filter((v) => v.error).length;
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  if (errors > 0) parts.push(`${errors} with a config error`);
  return `${s.vassals.length} vassal${s.vassals.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}
