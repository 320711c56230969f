// What `emperor top` draws: pure, from a status snapshot, a history and the view's state to
// exactly `rows` lines, each exactly `columns` cells wide (so a frame overwrites the last one
// without clearing the screen). No terminal I/O here; commands/top.ts does that.
import type { HistorySnapshot, StatusSnapshot, VassalHistory, VassalStatus } from '@emperor/daemon';
import { STATE_COLOR, formatBytes, formatDuration } from '../status-table.js';

export type SortKey = 'cpu' | 'mem' | 'name';
export type Action = 'reload' | 'restart' | 'stop' | 'start';

export interface ViewState {
  sort: SortKey;
  filter: string;
  /** Typing a filter: keys go to `filter` until Enter or Esc. */
  editingFilter: boolean;
  /** The selected vassal's name (kept across refreshes and re-sorts). */
  selected: string | undefined;
  /** An action waiting for y/n on the selected vassal. */
  confirm: Action | undefined;
  /** The vassal whose log is followed in the lower half, and its last lines. */
  log: { name: string; lines: string[] } | undefined;
  /** One line of feedback: an action's outcome, a lost connection. */
  message: string;
}

export interface Frame {
  readonly status: StatusSnapshot | undefined;
  readonly history: HistorySnapshot | undefined;
  readonly state: ViewState;
  readonly rows: number;
  readonly columns: number;
  readonly color: boolean;
  readonly now: number;
}

const BLOCKS = ' ▁▂▃▄▅▆▇█';
/** Samples shown per sparkline: a column per sample (3 s each). */
export const SPARK_WIDTH = 20;

/** A sparkline of `values` scaled from `lo` to `hi`; a missing sample is a blank. */
export function sparkline(values: readonly (number | null)[], lo: number, hi: number, width: number): string {
  const shown = values.slice(-width);
  const chars = shown.map((v) => {
    if (v === null) return ' ';
    const k = hi > lo ? Math.round(((v - lo) / (hi - lo)) * 7) + 1 : 4;
    return BLOCKS[Math.max(1, Math.min(8, k))] ?? ' ';
  });
  return ' '.repeat(Math.max(0, width - chars.length)) + chars.join('');
}

function sum(xs: readonly (number | null)[]): number | null {
  let total: number | null = null;
  for (const x of xs) if (x !== null) total = (total ?? 0) + x;
  return total;
}

/** A vassal as top holds it: with the latest sample of `/v1/events` when it reads that feed. */
export type TopVassal = VassalStatus & { readonly usage?: readonly [number | null, number | null] };

export function cpuOf(v: TopVassal): number | null {
  return v.usage ? v.usage[0] : sum(v.instances.map((i) => i.cpu_percent));
}

export function memOf(v: TopVassal): number | null {
  return v.usage ? v.usage[1] : sum(v.instances.map((i) => i.rss_bytes));
}

/** The vassals shown, filtered and in display order. */
export function visible(status: StatusSnapshot | undefined, state: ViewState): VassalStatus[] {
  const list = (status?.vassals ?? []).filter((v) => state.filter === '' || v.name.includes(state.filter));
  const by = (f: (v: VassalStatus) => number | null) => (a: VassalStatus, b: VassalStatus) =>
    (f(b) ?? -1) - (f(a) ?? -1) || a.name.localeCompare(b.name);
  if (state.sort === 'cpu') return list.sort(by(cpuOf));
  if (state.sort === 'mem') return list.sort(by(memOf));
  return list.sort((a, b) => a.name.localeCompare(b.name));
}

/** `text` cut or padded to exactly `width` cells, colour sequences kept whole. */
export function fit(text: string, width: number): string {
  let out = '';
  let cells = 0;
  let colored = false;
  for (let k = 0; k < text.length && cells < width;) {
    if (text.startsWith('\x1b[', k)) {
      const end = text.indexOf('m', k);
      const seq = text.slice(k, end + 1);
      out += seq;
      colored = seq !== '\x1b[0m';
      k = end + 1;
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(k) ?? 32);
    out += ch;
    cells += 1;
    k += ch.length;
  }
  return (colored ? `${out}\x1b[0m` : out) + ' '.repeat(Math.max(0, width - cells));
}

const KEYS_HELP = '↑↓ select  c/m/n sort  / filter  l log  r reload  R restart  s stop  S start  q quit';

export function render(f: Frame): string[] {
  const { state, columns, rows, color } = f;
  const paint = (code: string, text: string): string => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const out: string[] = [];
  const vassals = visible(f.status, state);
  const all = f.status?.vassals ?? [];
  const counts = new Map<string, number>();
  for (const v of all) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  const clock = new Date(f.now).toTimeString().slice(0, 8);
  const emperor = f.status
    ? `emperor ${f.status.emperor.version} pid ${f.status.emperor.pid} up ${formatDuration(f.status.emperor.uptime_s)}`
    : 'emperor: connecting';
  out.push(paint('1', `${emperor} · ${all.length} vassals${summary ? ` (${summary})` : ''}`));
  out.push(
    `sort: ${state.sort}` +
      (state.editingFilter || state.filter !== ''
        ? ` · filter: ${state.filter}${state.editingFilter ? '_' : ''}`
        : '') +
      ` · ${clock}`,
  );
  const spark = columns >= 110 ? SPARK_WIDTH : columns >= 90 ? 10 : 0;
  const header =
    pad('NAME', 20) +
    pad('STATE', 10) +
    pad('PROCS', 6) +
    pad('RESTARTS', 9) +
    padLeft('CPU%', 6) +
    ' ' +
    (spark ? pad(' CPU', spark + 1) : '') +
    padLeft('RSS', 6) +
    ' ' +
    (spark ? pad(' MEM', spark + 1) : '') +
    padLeft('WAIT', 5);
  out.push(paint('7', fit(header, columns)));

  const logRows = state.log ? Math.max(3, Math.floor((rows - 4) / 2)) : 0;
  const listRows = Math.max(1, rows - out.length - 1 - logRows);
  const history = new Map<string, VassalHistory>((f.history?.vassals ?? []).map((h) => [h.name, h]));
  const selectedIndex = Math.max(
    0,
    vassals.findIndex((v) => v.name === state.selected),
  );
  const top = Math.max(0, Math.min(selectedIndex - listRows + 1, vassals.length - listRows));
  const shown = vassals.slice(top, top + listRows);
  for (const v of shown) {
    const h = history.get(v.name);
    const cpu = cpuOf(v);
    const mem = memOf(v);
    const cpuSpark = h
      ? sparkline(h.cpu_percent, 0, Math.max(1, ...h.cpu_percent.map((x) => x ?? 0)), spark)
      : ' '.repeat(spark);
    const mems = (h?.rss_bytes ?? []).filter((x): x is number => x !== null);
    const memSpark = h
      ? // From below the lowest sample: a flat line sits mid-height and growth stands out.
        sparkline(h.rss_bytes, 2 * Math.min(...mems) - Math.max(...mems), Math.max(...mems), spark)
      : ' '.repeat(spark);
    const waiting = h?.waiting?.at(-1);
    const name = v.name.length > 19 ? `${v.name.slice(0, 18)}…` : v.name;
    const selected = v.name === state.selected;
    const line =
      (selected ? '>' : ' ') +
      pad(name, 19) +
      paint(STATE_COLOR[v.state] ?? '0', pad(v.state, 10)) +
      pad(String(v.instances.filter((i) => i.pid !== null).length), 6) +
      pad(String(v.restarts), 9) +
      padLeft(cpu === null ? '-' : cpu >= 100 ? String(Math.round(cpu)) : cpu.toFixed(1), 6) +
      ' ' +
      (spark ? ` ${paint('32', cpuSpark)}` : '') +
      padLeft(mem === null ? '-' : formatBytes(mem), 6) +
      ' ' +
      (spark ? ` ${paint('36', memSpark)}` : '') +
      padLeft(waiting === undefined || waiting === null ? '-' : String(waiting), 5);
    out.push(selected && color ? `\x1b[1m${fit(line, columns)}\x1b[0m` : fit(line, columns));
  }
  if (vassals.length === 0) out.push(state.filter ? `no vassal matches \`${state.filter}\`` : 'no vassals');
  // What is wrong with the selected vassal, in one line, where the eye is: top has no detail pane.
  const chosen = vassals.find((v) => v.name === state.selected);
  const problem = chosen === undefined ? undefined : problemOf(chosen);
  while (out.length < rows - 1 - logRows - (problem === undefined ? 0 : 1)) out.push('');
  if (problem !== undefined) out.push(paint('31', fit(`${chosen?.name ?? ''}: ${problem}`, columns)));
  if (state.log) {
    out.push(paint('7', fit(`log of ${state.log.name} (l to close)`, columns)));
    const tail = state.log.lines.slice(-(logRows - 1));
    for (const l of tail) out.push(l);
    while (out.length < rows - 1) out.push('');
  }
  const footer = state.confirm
    ? paint('33;1', `${state.confirm} ${state.selected ?? ''}? y to confirm, any other key to cancel`)
    : state.message !== ''
      ? state.message
      : KEYS_HELP;
  out.push(footer);
  return out.slice(0, rows).map((l) => fit(l, columns));
}

/**
 * Why a vassal needs a human, in one line, or undefined when it does not: the config error with
 * its file and line, else how it last exited and its last stderr line (`l` shows the whole log).
 */
export function problemOf(v: VassalStatus): string | undefined {
  const e = v.errors[0];
  if (e !== undefined)
    return `${e.file.split('/').pop() ?? e.file}${e.line === null ? '' : `:${e.line}`}: ${e.message}${v.errors.length > 1 ? ` (and ${v.errors.length - 1} more)` : ''}`;
  if (v.state !== 'backoff' && v.state !== 'failed') return undefined;
  const exit = v.last_exit;
  const how =
    exit === null
      ? undefined
      : exit.signal !== null
        ? `killed by ${exit.signal}`
        : `exited with code ${exit.code ?? '?'}`;
  // Not a stack frame or a runtime's sign-off (`Node.js v20...`): they do not say what went wrong.
  const stderr = v.last_stderr
    .filter(
      (l) =>
        l.trim() !== '' && !/^\s+at /.test(l) && !/^\s*[{}()[\]]\s*$/.test(l) && !/^Node\.js v\d/.test(l),
    )
    .at(-1)
    ?.trim();
  return [how, v.reason, stderr === undefined ? undefined : `stderr: ${stderr}`, 'l: its log']
    .filter((x) => x !== undefined && x !== null && x !== '')
    .join(' · ');
}

function pad(text: string, width: number): string {
  return text.length >= width ? `${text.slice(0, width - 1)} ` : text + ' '.repeat(width - text.length);
}

function padLeft(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text;
}
