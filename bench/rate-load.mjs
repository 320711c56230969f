// An open-loop HTTP load at a fixed rate, for comparing latency during reloads with a steady
// state when the machine is not saturated (wrk keeps every connection busy, so any extra CPU,
// such as booting a new generation, shows up as latency by construction).
// Each request's latency runs from its scheduled send time, not from when a connection was free,
// so queueing in the client counts (no coordinated omission). Keep-alive connections, at most
// CONNECTIONS at once. Prints one line `RATEJSON {...}` with the fields bench/sockets-lib.mjs's
// wrk report has (latencies in microseconds).
// WARMUP seconds at the same rate come first and are not counted: a fresh Node client opens its
// connections and compiles its own code then, and that made the first 500 ms of a run hold most
// of its slowest 1 % (a steady p99 of 25 ms against 4-6 ms for the same server warm).
// `startEpochMs` in the report, and a first line `RATESTART ms`, give the wall clock when the
// counted part starts.
// TRACE, a file path: one line per counted request, `sendMs latencyMs` (latencyMs -1 for a
// failure) with sendMs from startEpochMs, to see when the slow or failed ones came.
// Usage: node bench/rate-load.mjs PORT RATE SECONDS [CONNECTIONS=32] [TIMEOUT_S=2] [WARMUP_S=1] [TRACE]
import { writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';

const [port, rate, seconds, connections = 32, timeoutS = 2, warmupS = 1] = process.argv
  .slice(2, 8)
  .map(Number);
const tracePath = process.argv[8];
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const interval = 1000 / rate;
const warmup = Math.floor(rate * warmupS);
const total = warmup + Math.floor(rate * seconds);
const counted = total - warmup;
const latencies = new Float64Array(counted);
const trace = [];
const counts = { requests: 0, connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 };
let done = 0;
let sent = 0;
const start = performance.now();
const measuredFrom = start + warmup * interval;
const startEpochMs = Date.now() + warmup * interval;
// For a caller that times events within the counted part (bench/sockets-reload.mjs).
process.stdout.write(`RATESTART ${startEpochMs}\n`);

function settle() {
  done += 1;
  if (done === total) finish();
}

function fire(index, scheduledAt) {
  const counts_ = index >= warmup;
  let settled = false;
  const end = (kind, latencyMs, code) => {
    if (settled) return;
    settled = true;
    if (counts_) {
      if (kind) counts[kind] += 1;
      else latencies[counts.requests++] = latencyMs * 1000;
      if (tracePath)
        trace.push(
          `${(scheduledAt - measuredFrom).toFixed(2)} ${kind ? `-1 ${kind} ${code}` : latencyMs.toFixed(3)}`,
        );
    }
    settle();
  };
  const req = get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
    res.resume();
    res.on('end', () => {
      if (counts_ && (res.statusCode < 200 || res.statusCode > 299)) counts.non2xx += 1;
      end(undefined, performance.now() - scheduledAt);
    });
    res.on('error', (err) => end('read', 0, err.code));
  });
  req.setTimeout(timeoutS * 1000, () => {
    req.destroy();
    end('timeout', 0, 'TIMEOUT');
  });
  req.on('error', (err) =>
    end(
      err.code === 'ECONNREFUSED' ? 'connect' : 'read',
      0,
      `${err.code}:${req.reusedSocket ? 'reused' : 'new'}`,
    ),
  );
}

function tick() {
  const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
  while (sent < due) {
    fire(sent, start + sent * interval);
    sent += 1;
  }
  if (sent < total) setTimeout(tick, 1);
}

function finish() {
  if (tracePath) writeFileSync(tracePath, trace.join('\n') + '\n');
  const got = latencies.subarray(0, counts.requests).sort();
  const at = (q) => (got.length ? got[Math.min(got.length - 1, Math.floor(q * got.length))] : 0);
  const mean = got.reduce((a, b) => a + b, 0) / Math.max(1, got.length);
  const report = {
    ...counts,
    durationUs: (performance.now() - measuredFrom) * 1000,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: got.length ? got[got.length - 1] : 0,
    mean,
    startEpochMs,
  };
  process.stdout.write(`RATEJSON ${JSON.stringify(report)}\n`);
  agent.destroy();
  process.exit(0);
}

tick();
