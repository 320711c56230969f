// The emperor dashboard (docs/dashboard.md): plain DOM, one row per vassal updated in place, so a
// thousand vassals paint fast; uPlot charts and the log tail only for the vassal selected.
// Everything comes from the control API: `/v1/events` (the whole status, then changes and
// samples), `/v1/history` and `/v1/vassals/NAME/logs` for the selected vassal, `/v1/actions`.
import type uPlot from 'uplot';

/** uPlot, loaded when a vassal is first selected: the list paints without it. */
let uplotLoading: Promise<typeof uPlot> | undefined;
function loadUPlot(): Promise<typeof uPlot> {
  uplotLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = new URL('uplot.js', import.meta.url).toString();
    script.addEventListener('load', () => {
      resolve((window as unknown as { uPlot: typeof uPlot }).uPlot);
    });
    script.addEventListener('error', () => {
      reject(new Error('uplot.js did not load'));
    });
    document.head.append(script);
  });
  return uplotLoading;
}

interface ErrorStatus {
  code: string;
  file: string;
  line: number | null;
  key: string | null;
  message: string;
}
interface InstanceStatus {
  index: number;
  generation: number;
  pid: number | null;
  state: string;
  uptime_s: number;
  rss_bytes: number | null;
  cpu_percent: number | null;
  status: string | null;
}
interface VassalStatus {
  name: string;
  file: string;
  state: string;
  generation: number;
  restarts: number;
  recycles?: number;
  sockets: string[];
  sockets_open: boolean;
  instances: InstanceStatus[];
  side_daemons?: { index: number; command: string; pid: number | null; state: string; restarts: number }[];
  last_exit: { code: number | null; signal: string | null; at: string } | null;
  last_stderr: string[];
  backoff_until: string | null;
  errors: ErrorStatus[];
  reason: string | null;
  retry_at: string | null;
  uptime_s: number | null;
  processes: number;
}
interface EmperorStatus {
  pid: number;
  version: string;
  uptime_s: number;
  vassal_dirs: string[];
  missing_dirs?: string[];
  rss_bytes?: number;
  containment?: { mode: string; cgroup: string | null; reason: string | null };
}
interface Sample {
  at: number;
  emperor: { uptime_s: number; rss_bytes: number };
  vassals: Record<string, [number | null, number | null]>;
}
interface History {
  times: number[];
  vassals: {
    name: string;
    instances: { index: number; cpu_percent: (number | null)[]; rss_bytes: (number | null)[] }[];
  }[];
}
interface Session {
  transport: 'socket' | 'tcp';
  can_act: boolean;
  token_file?: string;
}

const api = (path: string): string => new URL(`../v1/${path}`, location.href).toString();

const vassals = new Map<string, VassalStatus>();
const usage = new Map<string, [number | null, number | null]>();
const rows = new Map<string, HTMLTableRowElement>();
let emperor: EmperorStatus | undefined;
let health: Sample['emperor'] | undefined;
let session: Session = { transport: 'socket', can_act: false };
let selected: string | undefined;
let filter = '';
let painted = false;

// ---- small DOM helpers -------------------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function duration(s: number | null | undefined): string {
  if (s === null || s === undefined) return '–';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor(s / 3600) % 24}h`;
}

function clock(iso: string | null): string {
  return iso === null ? '' : new Date(iso).toLocaleTimeString();
}

function exitText(v: VassalStatus): string {
  const e = v.last_exit;
  if (!e) return '';
  return e.signal !== null ? `killed by ${e.signal}` : `exited with code ${e.code ?? '?'}`;
}

const TELLING =
  /error|ERR_|exception|fatal|cannot|can't|could not|failed|refused|denied|not found|no such|invalid|missing/i;

/**
 * The stderr line that says most about a crash, for the one-line summary: the last that looks like
 * an error, else the last that is not a stack frame or a runtime's sign-off (a Node crash ends with
 * `    at ...` lines, `}` and `Node.js v20...`, none of which says what went wrong).
 */
function tellingLine(lines: readonly string[]): string | undefined {
  const useful = lines.filter(
    (l) => l.trim() !== '' && !/^\s+at /.test(l) && !/^\s*[{}()[\]]\s*$/.test(l) && !/^Node\.js v\d/.test(l),
  );
  return (
    [...useful]
      .reverse()
      .find((l) => TELLING.test(l))
      ?.trim() ??
    useful.at(-1)?.trim() ??
    // Only the end of a long trace is in the status: what went wrong is further up, in the log.
    (lines.length > 0 ? 'the cause is in its log' : undefined)
  );
}

/** Broken first (what needs a human), then what is changing, then what runs. */
function rank(v: VassalStatus): number {
  if (v.state === 'failed') return 0;
  if (v.state === 'backoff') return 1;
  if (v.errors.length > 0) return 2;
  if (v.state === 'starting' || v.state === 'reloading' || v.state === 'stopping') return 3;
  if (v.state === 'stopped') return 5;
  return 4;
}

function broken(v: VassalStatus): boolean {
  return rank(v) <= 2;
}

// ---- the page's frame ----------------------------------------------------------------------------

const live = el('span', { class: 'live off' }, 'connecting…');
const healthBox = el('div', { class: 'health' });
const authBox = el('div', { class: 'auth' });
const counts = el('div', { class: 'counts' });
const problems = el('section', { class: 'problems', hidden: '' });
const filterInput = el('input', { type: 'search', placeholder: 'filter by name', 'aria-label': 'filter' });
const hasRecycles = { shown: false };
const thead = el('thead');
const tbody = el('tbody');
const table = el('table', { class: 'vassals' }, thead, tbody);
const detail = el('section', { class: 'detail', hidden: '' });
const notice = el('div', { class: 'notice', role: 'status' });

document.body.append(
  el('header', {}, el('h1', {}, 'emperor'), live, healthBox, authBox),
  notice,
  problems,
  el(
    'main',
    {},
    el('div', { class: 'list' }, el('div', { class: 'tools' }, filterInput, counts), table),
    detail,
  ),
);

function headings(): void {
  const names = ['Vassal', 'State', 'Instances', 'Sockets', 'CPU', 'Memory', 'Restarts'];
  if (hasRecycles.shown) names.push('Recycles');
  names.push('Uptime', 'Last exit / problem');
  thead.replaceChildren(el('tr', {}, ...names.map((n) => el('th', {}, n))));
}
headings();

filterInput.addEventListener('input', () => {
  filter = filterInput.value.trim().toLowerCase();
  for (const [name, row] of rows) row.hidden = !shown(name);
});

tbody.addEventListener('click', (e) => {
  const row = (e.target as HTMLElement).closest('tr');
  const name = row?.dataset.name;
  if (name !== undefined) select(name);
});

function say(text: string, kind: 'ok' | 'error' = 'ok'): void {
  notice.textContent = text;
  notice.className = `notice ${kind}`;
}

// ---- the table -----------------------------------------------------------------------------------

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
function esc(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ESCAPES[c] ?? c);
}

/** A row's cells as HTML: a thousand rows parse far faster from one string than built node by node. */
function cellsHtml(v: VassalStatus): string {
  const [cpu, rss] = usage.get(v.name) ?? [null, null];
  const running = v.instances.filter((i) => i.state === 'running' && i.generation === v.generation).length;
  const e = v.errors[0];
  const problem =
    e !== undefined
      ? `${e.file.split('/').pop() ?? ''}${e.line === null ? '' : `:${e.line}`}: ${e.message}`
      : v.state === 'backoff' || v.state === 'failed'
        ? [exitText(v), v.reason, tellingLine(v.last_stderr)].filter(Boolean).join(' · ')
        : exitText(v);
  const out = [
    esc(v.name),
    `<span class="state ${esc(v.state)}">${esc(v.state)}</span>`,
    `${running}/${v.processes}`,
    esc(v.sockets.join(' ')),
    cpu === null ? '–' : `${cpu.toFixed(1)}%`,
    bytes(rss),
    String(v.restarts),
  ];
  if (hasRecycles.shown) out.push(v.recycles === undefined ? '–' : String(v.recycles));
  out.push(duration(v.uptime_s), problem === '' ? '' : `<div class="problem-text">${esc(problem)}</div>`);
  return `<td>${out.join('</td><td>')}</td>`;
}

function rowClass(v: VassalStatus): string {
  return `${broken(v) ? 'broken' : v.state}${v.name === selected ? ' selected' : ''}`;
}

function shown(name: string): boolean {
  return filter === '' || name.toLowerCase().includes(filter);
}

/** Renders these vassals' rows: existing ones in place, new ones parsed from one string. */
function renderRows(list: readonly VassalStatus[]): void {
  const fresh: VassalStatus[] = [];
  for (const v of list) {
    const row = rows.get(v.name);
    if (!row) {
      fresh.push(v);
      continue;
    }
    row.className = rowClass(v);
    row.innerHTML = cellsHtml(v);
    row.hidden = !shown(v.name);
  }
  if (fresh.length === 0) return;
  const tpl = document.createElement('template');
  tpl.innerHTML = `<table><tbody>${fresh.map((v) => `<tr class="${esc(rowClass(v))}"${shown(v.name) ? '' : ' hidden'}>${cellsHtml(v)}</tr>`).join('')}</tbody></table>`;
  const made = tpl.content.querySelectorAll('tr');
  fresh.forEach((v, k) => {
    const row = made[k];
    if (!row) return;
    row.dataset.name = v.name;
    rows.set(v.name, row);
  });
}

/** Puts the rows in order (moving, not rebuilding them) and redraws what sums them up. */
function arrange(): void {
  const sorted = [...vassals.values()].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
  const frag = document.createDocumentFragment();
  for (const v of sorted) {
    const row = rows.get(v.name);
    if (row) frag.append(row);
  }
  tbody.append(frag);
  const byState = new Map<string, number>();
  for (const v of vassals.values()) byState.set(v.state, (byState.get(v.state) ?? 0) + 1);
  counts.replaceChildren(
    `${vassals.size} vassals: `,
    ...[...byState].flatMap(([s, n]) => [el('span', { class: `state ${s}` }, `${n} ${s}`), ' ']),
  );
  renderProblems(sorted.filter(broken));
  renderHealth();
}

let arrangeQueued = false;
function arrangeSoon(): void {
  if (arrangeQueued) return;
  arrangeQueued = true;
  requestAnimationFrame(() => {
    arrangeQueued = false;
    arrange();
  });
}

// ---- what is broken, and how to fix it ----------------------------------------------------------

/** What to press after fixing a cause, as this session can. */
function restartHint(): string {
  return session.can_act ? 'press Restart' : 'log in with the dashboard token and press Restart';
}

function explain(v: VassalStatus): string {
  if (v.errors.length > 0) {
    const serving = v.state === 'running' || v.state === 'waiting';
    return `Its file has ${v.errors.length === 1 ? 'an error' : `${v.errors.length} errors`}: fix ${v.errors.length === 1 ? 'it' : 'them'} in ${v.file} and save; the emperor reads the file again by itself.${serving ? ' Until then the generation already running keeps serving.' : ''}`;
  }
  const output =
    v.last_stderr.length > 0
      ? ` Its last lines on stderr are below (its whole log is under "Log" when you open it).`
      : ' It wrote nothing on stderr: see its log (open it).';
  if (v.state === 'backoff')
    return `It ${exitText(v) || 'exits'} soon after starting, so the emperor restarts it with growing delays${v.backoff_until ? ` (next try at ${clock(v.backoff_until)})` : ''}.${output} Fix the cause: the next try picks the fix up by itself, or ${restartHint()} to try at once.`;
  return `${v.reason ?? 'It cannot start'}.${v.retry_at ? ` The emperor tries again at ${clock(v.retry_at)}.` : ''}${output} Fix the cause, then ${restartHint()} (or save its file).`;
}

function errorList(v: VassalStatus): HTMLElement {
  return el(
    'ul',
    { class: 'errors' },
    ...v.errors.map((e) =>
      el(
        'li',
        {},
        el('code', {}, `${e.file}${e.line === null ? '' : `:${e.line}`}`),
        ` ${e.message} `,
        el('span', { class: 'code' }, e.code),
      ),
    ),
  );
}

function stderrBlock(v: VassalStatus): HTMLElement | string {
  if (v.last_stderr.length === 0) return '';
  return el('pre', { class: 'stderr' }, v.last_stderr.join('\n'));
}

function renderProblems(list: VassalStatus[]): void {
  problems.hidden = list.length === 0;
  if (list.length === 0) return;
  const shown = list.slice(0, 12);
  problems.replaceChildren(
    el('h2', {}, `${list.length} ${list.length === 1 ? 'vassal needs' : 'vassals need'} attention`),
    ...shown.map((v) => {
      const card = el(
        'article',
        { class: 'problem', 'data-name': v.name },
        el(
          'h3',
          {},
          el('button', { class: 'link', type: 'button' }, v.name),
          ' ',
          el('span', { class: `state ${v.state}` }, v.state),
        ),
        el('p', {}, explain(v)),
        v.errors.length > 0 ? errorList(v) : '',
        stderrBlock(v),
        v.errors.length > 0 ? '' : el('button', { class: 'open-log', type: 'button' }, 'Open its log'),
      );
      card.querySelector('button.link')?.addEventListener('click', () => {
        select(v.name);
      });
      card.querySelector('button.open-log')?.addEventListener('click', () => {
        select(v.name);
        logPre.scrollIntoView({ block: 'nearest' });
      });
      return card;
    }),
    list.length > shown.length
      ? el('p', {}, `and ${list.length - shown.length} more (first in the table)`)
      : '',
  );
}

// ---- the emperor's own health and the session --------------------------------------------------

function renderHealth(): void {
  if (!emperor) return;
  const c = emperor.containment;
  const parts: (string | Node)[] = [
    `pid ${emperor.pid}`,
    `v${emperor.version}`,
    `up ${duration(health?.uptime_s ?? emperor.uptime_s)}`,
    `RSS ${bytes(health?.rss_bytes ?? emperor.rss_bytes)}`,
  ];
  if (c) parts.push(`containment: ${c.mode}${c.reason ? ` (${c.reason})` : ''}`);
  parts.push(`watching ${emperor.vassal_dirs.join(', ')}`);
  if (emperor.missing_dirs?.length) parts.push(`missing: ${emperor.missing_dirs.join(', ')}`);
  healthBox.replaceChildren(...parts.map((p) => el('span', {}, p)));
}

async function loadSession(): Promise<void> {
  const res = await fetch(api('session'), { credentials: 'same-origin' });
  if (res.ok) session = (await res.json()) as Session;
  renderAuth();
  if (selected !== undefined) renderDetail();
}

function renderAuth(): void {
  if (session.transport === 'socket') {
    authBox.replaceChildren(el('span', { class: 'ok' }, 'actions enabled (control socket)'));
    return;
  }
  if (session.can_act) {
    const out = el('button', { type: 'button' }, 'Log out');
    out.addEventListener('click', () => {
      void post('logout', {}).then(loadSession);
    });
    authBox.replaceChildren(el('span', { class: 'ok' }, 'actions enabled '), out);
    return;
  }
  const input = el('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    placeholder: 'dashboard token',
    'aria-label': 'dashboard token',
  });
  const form = el(
    'form',
    { class: 'login' },
    'read-only · ',
    input,
    el('button', { type: 'submit' }, 'Log in'),
  );
  form.title = `The token is in ${session.token_file ?? 'dashboard.token beside the control socket'}`;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void post('login', { token: input.value }).then(async (res) => {
      if (res.ok) say('logged in: actions enabled');
      await loadSession();
    });
  });
  authBox.replaceChildren(form);
}

/** A state-changing request: same origin, JSON, and the header a cross-origin page cannot send. */
async function post(path: string, body: unknown): Promise<Response> {
  const res = await fetch(api(path), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-emperor-request': '1' },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const err = (await res
      .clone()
      .json()
      .catch(() => undefined)) as { error?: { message?: string } } | undefined;
    say(err?.error?.message ?? `${path}: HTTP ${res.status}`, 'error');
  }
  return res;
}

// ---- the selected vassal -------------------------------------------------------------------------

let charts: uPlot[] = [];
let chartKey = '';
let logAbort: AbortController | undefined;
const logPre = el('pre', { class: 'log' });

function select(name: string): void {
  if (selected !== name) {
    rows.get(selected ?? '')?.classList.remove('selected');
    selected = name;
    rows.get(name)?.classList.add('selected');
    for (const c of charts) c.destroy();
    charts = [];
    chartKey = '';
    tailLog(name);
  }
  renderDetail();
  void loadHistory();
}

function renderDetail(): void {
  const v = selected === undefined ? undefined : vassals.get(selected);
  detail.hidden = v === undefined;
  if (!v) return;
  const actions = el('div', { class: 'actions' });
  for (const action of ['reload', 'restart', 'stop', 'start']) {
    const b = el(
      'button',
      { type: 'button', 'data-action': action },
      `${action.slice(0, 1).toUpperCase()}${action.slice(1)}`,
    );
    if (!session.can_act) {
      b.disabled = true;
      b.title = 'read-only: log in with the dashboard token';
    }
    b.addEventListener('click', () => {
      if (!confirm(`${action} ${v.name}?`)) return;
      void post('actions', { action, targets: [v.name] }).then((res) => {
        if (res.ok) say(`${action} ${v.name}: sent`);
      });
    });
    actions.append(b);
  }
  const instances =
    v.instances.length === 0
      ? el('p', { class: 'explain' }, 'No process runs now.')
      : (el(
          'table',
          { class: 'instances' },
          el(
            'tr',
            {},
            ...['#', 'gen', 'pid', 'state', 'uptime', 'CPU', 'memory', 'status'].map((h) => el('th', {}, h)),
          ),
          ...v.instances.map((i) =>
            el(
              'tr',
              {},
              ...[
                String(i.index),
                String(i.generation),
                String(i.pid ?? '–'),
                i.state,
                duration(i.uptime_s),
                i.cpu_percent === null ? '–' : `${i.cpu_percent.toFixed(1)}%`,
                bytes(i.rss_bytes),
                i.status ?? '',
              ].map((c) => el('td', {}, c)),
            ),
          ),
        ) as HTMLElement);
  const facts: [string, string][] = [
    ['file', v.file],
    ['state', `${v.state}${v.reason ? ` (${v.reason})` : ''}`],
    ['generation', String(v.generation)],
    ['restarts', String(v.restarts)],
    ['sockets', v.sockets.length ? `${v.sockets.join(' ')} (${v.sockets_open ? 'open' : 'closed'})` : 'none'],
    ['last exit', v.last_exit ? `${exitText(v)} at ${clock(v.last_exit.at)}` : '–'],
  ];
  if (v.recycles !== undefined) facts.push(['recycles', String(v.recycles)]);
  if (v.side_daemons?.length)
    facts.push(['side daemons', v.side_daemons.map((d) => `${d.command} (${d.state})`).join(', ')]);
  const chartBox = detail.querySelector('.charts') ?? el('div', { class: 'charts' });
  // A crashing vassal's log says why (the start of a stack trace is above its last stderr lines):
  // right under the summary, not below the charts.
  const crashing = broken(v) && v.errors.length === 0;
  const log = [el('h3', {}, 'Log'), logPre];
  detail.replaceChildren(
    el('h2', {}, v.name, ' ', el('span', { class: `state ${v.state}` }, v.state)),
    actions,
    broken(v) ? el('p', { class: 'explain' }, explain(v)) : '',
    v.errors.length > 0 ? errorList(v) : '',
    stderrBlock(v),
    ...(crashing ? log : []),
    el('dl', {}, ...facts.flatMap(([k, val]) => [el('dt', {}, k), el('dd', {}, val)])),
    instances,
    chartBox,
    ...(crashing ? [] : log),
  );
}

async function loadHistory(): Promise<void> {
  const name = selected;
  if (name === undefined) return;
  const res = await fetch(api(`history?name=${encodeURIComponent(name)}`));
  if (!res.ok || name !== selected) return;
  const h = (await res.json()) as History;
  const vh = h.vassals[0];
  const UPlot = await loadUPlot();
  if (!vh || name !== selected) return;
  const x = h.times.map((t) => t / 1000);
  const cpu: uPlot.AlignedData = [x, ...vh.instances.map((i) => i.cpu_percent)];
  const mem: uPlot.AlignedData = [
    x,
    ...vh.instances.map((i) => i.rss_bytes.map((b) => (b === null ? null : b / 1024 / 1024))),
  ];
  const key = `${name}:${vh.instances.map((i) => i.index).join(',')}`;
  const box = detail.querySelector('.charts');
  if (!box) return;
  if (key !== chartKey) {
    for (const c of charts) c.destroy();
    box.replaceChildren();
    chartKey = key;
    const width = Math.max(280, Math.min(box.clientWidth || 560, 720));
    const opts = (title: string, unit: string): uPlot.Options => ({
      title,
      width,
      height: 160,
      legend: { show: vh.instances.length > 1 },
      scales: { y: { range: (_u, _min, max) => [0, Math.max(unit === '%' ? 5 : 1, max * 1.1)] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${+t.toFixed(1)}${unit}`), size: 60 }],
      series: [
        {},
        ...vh.instances.map((i, k) => ({
          label: `#${i.index}`,
          stroke: PALETTE[k % PALETTE.length] ?? '#07c',
          width: 1.5,
        })),
      ],
    });
    charts = [
      new UPlot(opts('CPU (% of one core)', '%'), cpu, box as HTMLElement),
      new UPlot(opts('Memory (RSS, MiB)', ''), mem, box as HTMLElement),
    ];
  } else {
    charts[0]?.setData(cpu);
    charts[1]?.setData(mem);
  }
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

const MAX_LOG_CHARS = 200_000;

/** Follows the vassal's log through the control API, as `emperor logs -f` does. */
function tailLog(name: string): void {
  logAbort?.abort();
  const abort = (logAbort = new AbortController());
  logPre.textContent = '';
  void (async () => {
    try {
      const res = await fetch(api(`vassals/${encodeURIComponent(name)}/logs?lines=200&follow=1`), {
        signal: abort.signal,
      });
      if (!res.ok || !res.body) {
        logPre.textContent = res.ok ? '' : `(no log: HTTP ${res.status})`;
        return;
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atEnd = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
        let text = logPre.textContent + value;
        if (text.length > MAX_LOG_CHARS)
          text = text.slice(text.indexOf('\n', text.length - MAX_LOG_CHARS) + 1);
        logPre.textContent = text;
        if (atEnd) logPre.scrollTop = logPre.scrollHeight;
      }
    } catch {
      // aborted (another vassal selected) or the connection dropped
    }
  })();
}

// ---- live updates ---------------------------------------------------------------------------------

function upsert(list: VassalStatus[]): void {
  for (const v of list) {
    vassals.set(v.name, v);
    // A column of zeros is noise: it appears with the first recycle.
    if ((v.recycles ?? 0) > 0 && !hasRecycles.shown) {
      hasRecycles.shown = true;
      headings();
      renderRows([...vassals.values()]);
    }
    // Until the first sample, the status's own figures.
    if (!usage.has(v.name) && v.instances.some((i) => i.rss_bytes !== null))
      usage.set(v.name, [
        v.instances.reduce((s, i) => s + (i.cpu_percent ?? 0), 0),
        v.instances.reduce((s, i) => s + (i.rss_bytes ?? 0), 0),
      ]);
  }
  renderRows(list);
}

function connect(): void {
  performance.mark('emperor-connect');
  const source = new EventSource(api('events'));
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('error', () => {
    live.textContent = 'disconnected: retrying…';
    live.className = 'live off';
  });
  source.addEventListener('status', (e) => {
    if (!painted) performance.mark('emperor-status-received');
    const s = JSON.parse((e as MessageEvent<string>).data) as {
      emperor: EmperorStatus;
      vassals: VassalStatus[];
    };
    emperor = s.emperor;
    const names = new Set(s.vassals.map((v) => v.name));
    for (const name of [...vassals.keys()]) if (!names.has(name)) remove(name);
    upsert(s.vassals);
    if (!painted) performance.mark('emperor-rows-built');
    arrange();
    if (!painted) {
      painted = true;
      performance.mark('emperor-table-filled');
      document.body.dataset.ready = String(s.vassals.length);
    }
    if (selected !== undefined) renderDetail();
  });
  source.addEventListener('vassals', (e) => {
    const d = JSON.parse((e as MessageEvent<string>).data) as { vassals: VassalStatus[]; removed: string[] };
    for (const name of d.removed) remove(name);
    upsert(d.vassals);
    arrangeSoon();
    if (
      selected !== undefined &&
      (d.vassals.some((v) => v.name === selected) || d.removed.includes(selected))
    )
      renderDetail();
  });
  source.addEventListener('sample', (e) => {
    const s = JSON.parse((e as MessageEvent<string>).data) as Sample;
    health = s.emperor;
    for (const [name, u] of Object.entries(s.vassals)) {
      usage.set(name, u);
      // Only the two cells that changed: a thousand rows every few seconds stays cheap.
      const row = rows.get(name);
      if (row) {
        const [cpu, rss] = u;
        const cpuCell = row.cells[4];
        const rssCell = row.cells[5];
        if (cpuCell) cpuCell.textContent = cpu === null ? '–' : `${cpu.toFixed(1)}%`;
        if (rssCell) rssCell.textContent = bytes(rss);
      }
    }
    renderHealth();
    void loadHistory();
  });
}

function remove(name: string): void {
  vassals.delete(name);
  usage.delete(name);
  rows.get(name)?.remove();
  rows.delete(name);
}

connect();
void loadSession();
