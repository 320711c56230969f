// The terminal side of `emperor top`: the alternate screen in raw mode, the daemon's live feed
// (`/v1/events`, top/feed.ts; a poll of status from a daemon without it) and the history of the
// rows on screen every interval, keys, and a terminal given back as it was on every way out (q,
// Ctrl-C, a signal, a lost daemon, a crash). Frames are written cell for cell over the last one
// (cursor positioned per line, no clear), and only when they differ: no flicker.
import { writeSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { ActionResult, HistorySnapshot, StatusSnapshot } from '@emperor/daemon';
import { DaemonError, UnreachableError, call, open } from '../control-client.js';
import { failure } from '../failure.js';
import type { Output } from '../commands/command.js';
import { SPARK_WIDTH, render, visible, type Action, type SortKey, type ViewState } from './view.js';
import { openFeed, type Feed } from './feed.js';

export interface TopOptions {
  readonly socket: string;
  readonly sort: SortKey;
  readonly intervalMs: number;
  readonly filter: string;
}

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, cursor hidden
const LEAVE = '\x1b[0m\x1b[?25h\x1b[?1049l';
const LOG_LINES_KEPT = 200;
const ACTIONS: Readonly<Record<string, Action>> = { r: 'reload', R: 'restart', s: 'stop', S: 'start' };
const SORTS: Readonly<Record<string, SortKey>> = { c: 'cpu', m: 'mem', n: 'name' };

async function fetchFrame(
  socket: string,
  state: ViewState,
  rows: number,
): Promise<{ status: StatusSnapshot; history: HistorySnapshot | undefined }> {
  const status = await call<StatusSnapshot>(socket, '/v1/status');
  return { status, history: await fetchHistory(socket, status, state, rows) };
}

async function fetchHistory(
  socket: string,
  status: StatusSnapshot,
  state: ViewState,
  rows: number,
): Promise<HistorySnapshot | undefined> {
  // Only the rows that can be on screen: at 1000 vassals the whole history is 100 times more.
  const shown = visible(status, state).slice(0, rows);
  if (shown.length === 0) return undefined;
  const query = new URLSearchParams(shown.map((v): [string, string] => ['name', v.name]));
  query.set('points', String(SPARK_WIDTH));
  // An older daemon without history, or a vassal gone since: this frame has no sparklines.
  return call<HistorySnapshot>(socket, `/v1/history?${query.toString()}`).catch((err: unknown) => {
    if (err instanceof DaemonError) return undefined;
    throw err;
  });
}

/** Not a terminal: one frame as plain text, for a pipe or a log. */
export async function printOnce(options: TopOptions, output: Output): Promise<number> {
  const state = initialState(options);
  const { status, history } = await fetchFrame(options.socket, state, 1000);
  const lines = render({
    status,
    history,
    state,
    rows: visible(status, state).length + 4,
    columns: 120,
    color: false,
    now: Date.now(),
  });
  for (const line of lines.slice(0, -1)) output.out(line.trimEnd());
  return 0;
}

function initialState(options: TopOptions): ViewState {
  return {
    sort: options.sort,
    filter: options.filter,
    editingFilter: false,
    selected: undefined,
    confirm: undefined,
    log: undefined,
    message: '',
  };
}

/** Splits raw input into keys: one character, or one escape sequence (arrows: `\x1b[A`). */
export function keys(data: string): string[] {
  const out: string[] = [];
  for (let k = 0; k < data.length;) {
    // eslint-disable-next-line no-control-regex
    const m = /^\x1b(\[[0-9;]*[A-Za-z~]|O[A-Za-z])/.exec(data.slice(k));
    const key = m ? m[0] : String.fromCodePoint(data.codePointAt(k) ?? 0);
    out.push(key);
    k += key.length;
  }
  return out;
}

/** Control characters and escapes of a log line would move our cursor: shown as `?`. */
function clean(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, '?').replace(/\t/g, '  ');
}

export async function runTop(options: TopOptions): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const color = !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
  const state = initialState(options);
  let status: StatusSnapshot | undefined;
  let history: HistorySnapshot | undefined;
  let lastFrame: string[] = [];
  let logStream: IncomingMessage | undefined;
  /** The live feed; undefined from a daemon without one (then status is polled), or once lost. */
  let feed: Feed | undefined;
  let polled = false;
  let timer: NodeJS.Timeout | undefined = undefined;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    clearInterval(timer);
    logStream?.destroy();
    feed?.close();
    try {
      if (stdin.isTTY) stdin.setRawMode(false);
    } catch {
      // stdin closed already: nothing to give back
    }
    stdin.pause();
    try {
      // Synchronous: this also runs from process.on('exit'), where nothing async is run.
      writeSync(1, LEAVE);
    } catch {
      // stdout gone (the terminal closed): nothing to restore on it
    }
  };
  const quit = (code: number, message?: string): void => {
    restore();
    if (message !== undefined) process.stderr.write(`${message}\n`);
    finish(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    quit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
  };
  const onCrash = (err: unknown): void => {
    quit(1, `emperor top: ${failure(err)}`);
  };
  process.once('exit', restore);
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal).on('SIGHUP', onSignal);
  process.on('uncaughtException', onCrash).on('unhandledRejection', onCrash);

  const draw = (): void => {
    if (restored) return;
    const rows = Math.max(5, stdout.rows || 24);
    const columns = Math.max(40, stdout.columns || 80);
    const names = visible(status, state).map((v) => v.name);
    if (state.selected === undefined || !names.includes(state.selected)) state.selected = names[0];
    const lines = render({ status, history, state, rows, columns, color, now: Date.now() });
    // Only the lines that changed, each at its row: nothing is cleared, so nothing flickers.
    let frame = '';
    lines.forEach((line, k) => {
      if (lastFrame[k] !== line) frame += `\x1b[${k + 1};1H${line}`;
    });
    lastFrame = lines;
    if (frame !== '') stdout.write(frame);
  };

  let polling = false;
  const refresh = async (): Promise<void> => {
    if (polling || restored) return;
    polling = true;
    try {
      // The selected row may be far down the list: ask for everything up to it too.
      const at = visible(status, state).findIndex((v) => v.name === state.selected);
      const rows = Math.max(stdout.rows || 24, at + 1);
      if (feed === undefined && !polled) {
        // (Re)open the feed: at start, and after the daemon restarted or the connection broke.
        const opened = await openFeed(options.socket, () => {
          if (feed === undefined) return;
          status = feed.snapshot();
          draw();
        });
        if (opened === undefined) polled = true;
        else {
          feed = opened;
          void opened.ended.then(() => {
            if (feed === opened) feed = undefined;
          });
        }
      }
      if (feed) {
        status = feed.snapshot();
        history = status && (await fetchHistory(options.socket, status, state, rows));
      } else ({ status, history } = await fetchFrame(options.socket, state, rows));
      if (state.message.startsWith('lost')) state.message = '';
    } catch (err) {
      if (err instanceof UnreachableError) {
        quit(3, `emperor top: lost the emperor: ${err.message}`);
        return;
      }
      state.message = `lost contact: ${failure(err)}`;
    } finally {
      polling = false;
    }
    draw();
  };

  const act = async (action: Action, name: string): Promise<void> => {
    state.message = `${action} ${name}...`;
    draw();
    try {
      const r = await call<{ results: ActionResult[] }>(options.socket, '/v1/actions', {
        method: 'POST',
        body: { action, targets: [name] },
      });
      const res = r.results[0];
      state.message = res
        ? `${action} ${name}: ${res.ok ? 'done' : 'refused'}, now ${res.state}${res.reason ? ` (${res.reason})` : ''}`
        : `${action} ${name}: no answer`;
    } catch (err) {
      state.message = `${action} ${name} failed: ${failure(err)}`;
    }
    await refresh();
  };

  const follow = async (name: string): Promise<void> => {
    logStream?.destroy();
    const log = { name, lines: [] as string[] };
    state.log = log;
    try {
      const res = await open(
        options.socket,
        `/v1/vassals/${encodeURIComponent(name)}/logs?follow=1&lines=50`,
        {
          noTimeout: true,
        },
      );
      if (state.log !== log) {
        res.destroy();
        return;
      }
      if ((res.statusCode ?? 500) >= 400) {
        // The answer is an error in JSON (a vassal that never started has no log): its message.
        let text = '';
        for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString('utf8');
        let message = `HTTP ${res.statusCode ?? '?'}`;
        try {
          message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
        } catch {
          // not JSON: the status code says enough
        }
        if (state.log === log) log.lines.push(`(no log: ${message})`);
        draw();
        return;
      }
      logStream = res;
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        log.lines.push(...parts.map(clean));
        if (log.lines.length > LOG_LINES_KEPT) log.lines.splice(0, log.lines.length - LOG_LINES_KEPT);
        draw();
      });
      res.on('error', () => undefined);
    } catch (err) {
      state.message = `log of ${name}: ${failure(err)}`;
    }
    draw();
  };

  const onKey = (key: string): void => {
    if (key === '\x03') {
      quit(130);
      return;
    }
    if (state.editingFilter) {
      if (key === '\r' || key === '\n') state.editingFilter = false;
      else if (key === '\x1b') {
        state.editingFilter = false;
        state.filter = '';
      } else if (key === '\x7f' || key === '\b') state.filter = state.filter.slice(0, -1);
      else if (key.length === 1 && key >= ' ') state.filter += key;
      return;
    }
    if (state.confirm !== undefined) {
      const action = state.confirm;
      state.confirm = undefined;
      if (key === 'y' && state.selected !== undefined) void act(action, state.selected);
      else state.message = `${action} cancelled`;
      return;
    }
    state.message = '';
    const names = visible(status, state).map((v) => v.name);
    const at = state.selected === undefined ? -1 : names.indexOf(state.selected);
    if (key === 'q') quit(0);
    else if (key === '\x1b[A' || key === '\x1bOA' || key === 'k') state.selected = names[Math.max(0, at - 1)];
    else if (key === '\x1b[B' || key === '\x1bOB' || key === 'j')
      state.selected = names[Math.min(names.length - 1, at + 1)];
    else if (SORTS[key] !== undefined) state.sort = SORTS[key];
    else if (key === '/') state.editingFilter = true;
    else if (key === 'l' || key === '\r') {
      if (state.log !== undefined && (key === 'l' || state.log.name === state.selected)) {
        logStream?.destroy();
        logStream = undefined;
        state.log = undefined;
      } else if (state.selected !== undefined) void follow(state.selected);
    } else if (ACTIONS[key] !== undefined && state.selected !== undefined) state.confirm = ACTIONS[key];
  };

  stdout.write(`${ENTER}\x1b[2J`);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.on('data', (data: string) => {
    for (const key of keys(data)) onKey(key);
    draw();
  });
  stdin.resume();
  // SIGWINCH: Node updates columns and rows and emits 'resize'; the next frame fits.
  const onResize = (): void => {
    lastFrame = [];
    stdout.write('\x1b[2J');
    draw();
  };
  stdout.on('resize', onResize);
  draw();
  await refresh();
  timer = setInterval(() => void refresh(), options.intervalMs);
  try {
    return await done;
  } finally {
    restore();
    stdout.off('resize', onResize);
    process.off('exit', restore);
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal).off('SIGHUP', onSignal);
    process.off('uncaughtException', onCrash).off('unhandledRejection', onCrash);
  }
}
