// A port in use is data (issue #13, item 8): the machine's `bind-failed` event carries the errno
// code, and a vassal that failed on EADDRINUSE is retried at once when another vassal releases its
// sockets. No error text is matched: a reason that merely mentions the word does not count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, freePort, startEmperor, waitFor } from './support.js';

const APP = join(FIXTURES, 'socket-app.mjs');
const STUBBORN = join(FIXTURES, 'ignores-sigterm.mjs');

function socketVassal(port: number, extra = ''): string {
  return `[vassal]\nexec = ${process.execPath} ${APP}\nsocket = 127.0.0.1:${port}\nstop-timeout = 5\n${extra}`;
}

void test('a vassal that failed on a port in use starts as soon as the vassal holding it releases it', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  // An app that ignores SIGTERM holds the port for its stop-timeout after its file is gone; the
  // vassal's own retry would come only after 30 s, past the deadline below.
  emp.write(
    'a.ini',
    `[vassal]\nexec = ${process.execPath} ${STUBBORN}\nsocket = 127.0.0.1:${port}\nstop-timeout = 2\n` +
      'restart-delay = 30\nrestart-delay-max = 60\n',
  );
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'a', 'a running');
  const from = emp.lines.length;
  // mv a.ini b.ini: b finds the address still held by a, which is stopping.
  renameSync(join(emp.vassals, 'a.ini'), join(emp.vassals, 'b.ini'));
  const failed = await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'b', 'b failed', from);
  assert.match(String(failed.reason), /EADDRINUSE/);
  assert.equal(failed.retry_in_ms, 30_000);
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'b', 'b running', from, 15_000);
});

void test('a vassal whose failure merely mentions EADDRINUSE is not retried when another vassal releases its sockets', async (t) => {
  const port = await freePort();
  const emp = await startEmperor(t);
  emp.write('holder.ini', socketVassal(port));
  // Not a bind failure: its chdir is missing (and its name is in the reason).
  emp.write('odd.ini', `[vassal]\nexec = sleep 1000\nchdir = /nonexistent/EADDRINUSE\n`);
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'holder', 'holder running');
  await emp.waitLine((l) => l.event === 'failed' && l.vassal === 'odd', 'odd failed');
  const from = emp.lines.length;
  rmSync(join(emp.vassals, 'holder.ini'));
  // The holder's sockets are released (and any retry they cause is logged) before `removed`.
  await emp.waitLine((l) => l.event === 'removed' && l.vassal === 'holder', 'holder removed', from);
  await waitFor(() => emp.lines.length > from, { what: 'log lines' });
  const odd = emp.lines.slice(from).filter((l) => l.vassal === 'odd');
  assert.deepEqual(
    odd.map((l) => l.event),
    [],
    'odd was not started again',
  );
});
