// An open-loop HTTP load at a fixed rate, for comparing latency during reloads with a steady
// state when the machine is not saturated (wrk keeps every connection busy, so any extra CPU,
// such as booting a new generation, shows up as latency by construction).
// Each request's latency runs from its scheduled send time, not from when a connection was free,
// so queueing in the client counts (no coordinated omission). Keep-alive connections, at most
// CONNECTIONS at once. Prints one line `RATEJSON {...}` with the fields bench/sockets-lib.mjs's
// wrk report has (latencies in microseconds).
// Usage: node bench/rate-load.mjs PORT RATE SECONDS [CONNECTIONS=32] [TIMEOUT_S=2]
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';

const [port, rate, seconds, connections = 32, timeoutS = 2] = process.argv.slice(2).map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const total = Math.floor(rate * seconds);
const latencies = new Float64Array(total);
const counts = { requests: 0, connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 };
let done = 0;
let sent = 0;
const start = performance.now();
const interval = 1000 / rate;

function settle() {
  done += 1;
  if (done === total) finish();
}

function fire(scheduledAt) {
  let settled = false;
  const end = (kind) => {
    if (settled) return;
    settled = true;
    if (kind) counts[kind] += 1;
    settle();
  };
  const req = get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
    res.resume();
    res.on('end', () => {
      if (settled) return;
      latencies[counts.requests] = (performance.now() - scheduledAt) * 1000;
      counts.requests += 1;
      if (res.statusCode < 200 || res.statusCode > 299) counts.non2xx += 1;
      end(undefined);
    });
    res.on('error', () => end('read'));
  });
  req.setTimeout(timeoutS * 1000, () => {
    req.destroy();
    end('timeout');
  });
  req.on('error', (err) => end(err.code === 'ECONNREFUSED' ? 'connect' : 'read'));
}

function tick() {
  const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
  while (sent < due) fire(start + sent++ * interval);
  if (sent < total) setTimeout(tick, 1);
}

function finish() {
  const got = latencies.subarray(0, counts.requests).sort();
  const at = (q) => (got.length ? got[Math.min(got.length - 1, Math.floor(q * got.length))] : 0);
  const mean = got.reduce((a, b) => a + b, 0) / Math.max(1, got.length);
  const report = {
    ...counts,
    durationUs: (performance.now() - start) * 1000,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: got.length ? got[got.length - 1] : 0,
    mean,
  };
  process.stdout.write(`RATEJSON ${JSON.stringify(report)}\n`);
  agent.destroy();
  process.exit(0);
}

tick();
