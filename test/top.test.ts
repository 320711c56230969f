// `emperor top` in a real terminal: tmux runs it, `send-keys` types, `capture-pane` reads the
// screen. A vassal dropped in appears, the sort keys reorder, an action asks and acts, a log is
// followed, and Ctrl-C or a lost emperor give the terminal back as it was.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { BIN, controlSocket, startEmperor, waitFor } from './support.js';

const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;
const NODE = process.execPath;

interface Terminal {
  screen(): string;
  keys(...keys: string[]): void;
  resize(columns: number, rows: number): void;
  /** Waits until the screen satisfies `pred`; fails with the last screen seen. */
  until(pred: (screen: string) => boolean, what: string): Promise<string>;
  /** tmux's own view of the pane: alternate screen on, cursor shown. */
  flags(): { alternate: boolean; cursor: boolean };
}

/** A detached tmux on its own server (socket in a temp dir) running `command` in a 140x30 pane. */
function terminal(t: TestContext, command: string): Terminal {
  // Not tempDir(t): its removal would run before the hook below, which needs tmux's socket.
  const dir = mkdtempSync('/tmp/emp-tmux-');
  const tmux = (...args: string[]): string =>
    execFileSync('tmux', ['-S', join(dir, 'tmux.sock'), ...args], { encoding: 'utf8' });
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  delete env.NODE_EXTRA_CA_CERTS;
  execFileSync(
    'tmux',
    ['-S', join(dir, 'tmux.sock'), 'new-session', '-d', '-x', '140', '-y', '30', command],
    {
      env,
    },
  );
  t.after(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const screen = (): string => tmux('capture-pane', '-p');
  return {
    screen,
    keys: (...keys) => {
      tmux('send-keys', ...keys);
    },
    resize: (columns, rows) => {
      tmux('resize-window', '-x', String(columns), '-y', String(rows));
    },
    until: (pred, what) =>
      waitFor(
        () => {
          const s = screen();
          return pred(s) ? s : undefined;
        },
        { what, seen: screen },
      ),
    flags: () => {
      const [alternate, cursor] = tmux('display-message', '-p', '#{alternate_on} #{cursor_flag}')
        .trim()
        .split(' ');
      return { alternate: alternate === '1', cursor: cursor === '1' };
    },
  };
}

/** The row of vassal `name` on the screen (its line index), or -1. */
function row(screen: string, name: string): number {
  return screen.split('\n').findIndex((l) => new RegExp(`^[ >]${name}\\s`).test(l));
}

function line(screen: string, name: string): string {
  return screen.split('\n')[row(screen, name)] ?? '';
}

/** After top exits, the shell prints its exit code and whether the tty is back in cooked mode. */
function topCommand(control: string): string {
  return (
    `${NODE} ${BIN} top --control ${control} --interval 0.5; ` +
    `echo "top-exit=$?"; echo "tty: $(stty -a | grep -Eo -- '-?icanon|-?echo ' | tr '\\n' ' ')end"; sleep 600`
  );
}

void test(
  'top: vassals appear, sort keys reorder, an action is confirmed, a log is followed, Ctrl-C restores the terminal',
  { skip: HAS_TMUX ? false : 'tmux is not installed (apt-get install tmux)' },
  async (t) => {
    const emp = await startEmperor(t, {
      files: {
        'aaa-quiet.ini': `[vassal]\nexec = /bin/sh -c "echo hello-from-quiet; exec sleep 1000"\n`,
        // Some 60 MB of RSS: the largest by far, and last by name.
        'zzz-big.ini': `[vassal]\nexec = ${NODE} -e "globalThis.b = Buffer.alloc(60 << 20, 1); setInterval(() => {}, 1000)"\n`,
      },
    });
    await emp.waitLine((l) => l.event === 'running' && l.vassal === 'zzz-big', 'zzz-big running');
    const term = terminal(t, topCommand(controlSocket(emp)));
    await term.until(
      (s) => /aaa-quiet\s+running/.test(s) && /zzz-big\s+running/.test(s),
      'both vassals shown',
    );
    assert.equal(term.flags().alternate, true, 'top draws on the alternate screen');

    // A vassal dropped into the directory appears without a key.
    emp.write('mmm-new.ini', '[vassal]\nexec = /bin/sleep 1000\n');
    await term.until((s) => /mmm-new\s+running/.test(s), 'mmm-new appears');

    // m sorts by memory (zzz-big first), n by name (aaa-quiet first).
    term.keys('m');
    await term.until(
      (s) =>
        s.includes('sort: mem') && /\d/.test(line(s, 'zzz-big')) && row(s, 'zzz-big') < row(s, 'aaa-quiet'),
      'sorted by memory: zzz-big above aaa-quiet',
    );
    term.keys('n');
    await term.until(
      (s) =>
        s.includes('sort: name') &&
        row(s, 'aaa-quiet') < row(s, 'mmm-new') &&
        row(s, 'mmm-new') < row(s, 'zzz-big'),
      'sorted by name',
    );

    // Select aaa-quiet (the top row), follow its log, then stop it: asked first, done on y.
    term.keys('k', 'k', 'k');
    await term.until((s) => line(s, 'aaa-quiet').startsWith('>'), 'aaa-quiet selected');
    term.keys('l');
    await term.until(
      (s) => s.includes('log of aaa-quiet') && s.includes('hello-from-quiet'),
      'its log followed',
    );
    term.keys('l');
    await term.until((s) => !s.includes('log of aaa-quiet'), 'the log closed');
    term.keys('s');
    await term.until((s) => s.includes('stop aaa-quiet? y to confirm'), 'a confirmation');
    term.keys('x');
    await term.until((s) => s.includes('stop cancelled'), 'any other key cancels');
    assert.match(line(term.screen(), 'aaa-quiet'), /running/);
    term.keys('s');
    await term.until((s) => s.includes('stop aaa-quiet? y to confirm'), 'asked again');
    term.keys('y');
    await term.until((s) => /aaa-quiet\s+stopped/.test(s), 'aaa-quiet stopped');

    // A broken vassal, selected: what is wrong, with its file and line, under the list; its log
    // (it never ran) says why there is none instead of showing the raw answer.
    emp.write('bbb-broken.ini', '[vassal]\nexec = /bin/sleep 1000\nprocesses = four\n');
    await term.until((s) => /bbb-broken\s+failed/.test(s), 'bbb-broken shown');
    term.keys('j');
    await term.until((s) => line(s, 'bbb-broken').startsWith('>'), 'bbb-broken selected');
    await term.until(
      (s) => s.includes('bbb-broken: bbb-broken.ini:3: invalid `processes` value `four`'),
      'its error under the list',
    );
    term.keys('l');
    await term.until((s) => /\(no log: bbb-broken has never started/.test(s), 'why it has no log');
    assert.doesNotMatch(term.screen(), /\{"error"/);
    term.keys('l');

    // A filter narrows the list.
    term.keys('/', 'z', 'z', 'Enter');
    await term.until(
      (s) => row(s, 'zzz-big') >= 0 && row(s, 'aaa-quiet') < 0 && row(s, 'mmm-new') < 0,
      'filtered',
    );

    // SIGWINCH: a narrower, shorter terminal gets a frame that fits, the keys line at the bottom.
    term.resize(80, 12);
    await term.until((s) => {
      const lines = s.split('\n').filter((l, k, all) => k < all.length - 1 || l !== '');
      return lines.length === 12 && lines.every((l) => l.length <= 80) && /quit|filter/.test(lines[11] ?? '');
    }, 'a frame of 80x12');

    // Ctrl-C: top exits 130 and the shell finds its terminal as it was.
    term.keys('C-c');
    const after = await term.until((s) => /tty: .*end/.test(s), 'top exited and the shell read the tty');
    assert.match(after, /top-exit=130/);
    assert.match(after, /(^|\s)icanon/m, `cooked mode again: ${after}`);
    assert.match(after, /(^|\s)echo /m, `echo on again: ${after}`);
    assert.doesNotMatch(after, /zzz-big/, 'the main screen is back, without top on it');
    assert.deepEqual(term.flags(), { alternate: false, cursor: true });
  },
);

void test(
  'top: a lost emperor ends top with exit 3 and a restored terminal',
  { skip: HAS_TMUX ? false : 'tmux is not installed (apt-get install tmux)' },
  async (t) => {
    const emp = await startEmperor(t, { files: { 'one.ini': '[vassal]\nexec = /bin/sleep 1000\n' } });
    await emp.waitLine((l) => l.event === 'running' && l.vassal === 'one', 'one running');
    const term = terminal(t, topCommand(controlSocket(emp)));
    await term.until((s) => /one\s+running/.test(s), 'one shown');
    await emp.stop();
    const after = await term.until((s) => /tty: .*end/.test(s), 'top exited and the shell read the tty');
    assert.match(after, /top-exit=3/);
    assert.match(after, /lost the emperor/);
    assert.match(after, /(^|\s)icanon/m);
    assert.deepEqual(term.flags(), { alternate: false, cursor: true });
  },
);
