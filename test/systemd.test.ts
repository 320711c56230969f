// The emperor as a systemd Type=notify service: READY=1 after the first scan, STATUS=, watchdog
// pings, STOPPING=1. The test plays systemd with a real abstract datagram socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatagram, type Datagram } from '@emperor/native';
import { startEmperor, waitFor } from './support.js';

void test('under systemd: READY=1 with a status, WATCHDOG=1 pings, STOPPING=1 at SIGTERM', async (t) => {
  const notify = openDatagram(`@emperor-test/systemd/${process.pid}`);
  const got: Datagram[] = [];
  const watch = notify.watchReadable(() => {
    got.push(...notify.receive());
  });
  t.after(() => {
    watch.close();
    notify.close();
  });
  const emp = await startEmperor(t, {
    files: { 'nap.ini': '[vassal]\nexec = sleep 100\n' },
    env: { NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '200000' },
  });
  const texts = (): string[] => got.map((d) => d.data);
  const ready = await waitFor(() => texts().find((m) => m.startsWith('READY=1')), { what: 'READY=1' });
  assert.match(ready, /^STATUS=1 vassals: 1 running$/m);
  assert.ok(
    got.every((d) => d.pid === emp.child.pid),
    'sent by the emperor itself',
  );
  await waitFor(() => texts().filter((m) => m === 'WATCHDOG=1').length >= 3, {
    what: 'three watchdog pings (every 100 ms)',
  });
  assert.equal(await emp.stop(), 0);
  assert.ok(
    texts().some((m) => m.startsWith('STOPPING=1')),
    'STOPPING=1 before exit',
  );
});
