// The web dashboard end to end: the daemon's TCP port and control socket as an HTTP client sees
// them (auth, CSRF, caching), then the page in a real browser (Debian's chromium, driven by
// playwright-core; nothing downloaded), launched once for the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  controlSocket,
  FIXTURES,
  freePort,
  ROOT,
  runCli,
  startEmperor,
  tempDir,
  waitFor,
  type EmperorProcess,
} from './support.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

function http(
  target: { port: number } | { socketPath: string },
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = request(
      {
        ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }),
        method,
        path,
        agent: false,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The first event of `/v1/events` (the whole status), read from the stream. */
function firstEvent(port: number): Promise<{ event: string; data: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/events', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        text += c;
        const m = /event: (\w+)\ndata: (.*)\n\n/.exec(text);
        if (m) {
          req.destroy();
          resolve({ event: m[1] ?? '', data: JSON.parse(m[2] ?? '') as unknown });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

let browser: Browser | undefined;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no ${CHROMIUM}: \`apt-get install chromium\` (.ci/run installs it)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
});

async function dashboard(
  t: Parameters<typeof startEmperor>[0],
  files: Record<string, string>,
): Promise<{ emp: EmperorProcess; port: number; token: string; tokenFile: string }> {
  const port = await freePort();
  const emp = await startEmperor(t, { files, args: ['--dashboard', `127.0.0.1:${port}`] });
  const line = await emp.waitLine((l) => l.event === 'dashboard-listening', 'dashboard-listening');
  const tokenFile = String(line.token_file);
  return { emp, port, token: readFileSync(tokenFile, 'utf8').trim(), tokenFile };
}

/** Console errors, uncaught exceptions and failed requests of a page, for "no console error". */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    // The log tail and the event stream are aborted when the page goes: not errors.
    if (!/\/logs\?|\/v1\/events/.test(r.url())) errors.push(`requestfailed: ${r.url()}`);
  });
  return errors;
}

/** Run in the page (a string: the tests compile without the DOM's types): distinct colours of a PNG. */
const COUNT_COLOURS = `async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return seen.size;
}`;

const SLEEPER = '[vassal]\nexec = /bin/sleep 1000\n';

void test('dashboard over TCP: read-only without the token, actions with it, cross-origin and rebinding refused', async (t) => {
  const { emp, port, token, tokenFile } = await dashboard(t, { 'web.ini': SLEEPER });
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'web', 'web running');
  const tcp = { port };

  // The token file: in the runtime directory, readable by the owner and the group only.
  assert.equal(tokenFile, join(emp.dir, 'run', 'dashboard.token'));
  assert.equal(statSync(tokenFile).mode & 0o777, 0o640);
  assert.ok(token.length >= 32);

  // Reading needs nothing.
  const status = await http(tcp, 'GET', '/v1/status');
  assert.equal(status.status, 200);
  assert.match(status.text, /"name":"web"/);
  const first = await firstEvent(port);
  assert.equal(first.event, 'status');
  assert.equal((first.data as { vassals: { name: string }[] }).vassals[0]?.name, 'web');

  // The page: never cached; its assets under a content hash, cached for good, with their types.
  const root = await http(tcp, 'GET', '/');
  assert.equal(root.status, 302);
  assert.equal(root.headers.location, '/dashboard/');
  const page = await http(tcp, 'GET', '/dashboard/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['cache-control'], 'no-cache');
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(page.headers['access-control-allow-origin'], undefined);
  const scripts = [...page.text.matchAll(/(?:href|src)="(assets\/[0-9a-f]+\/[\w.]+)"/g)].map(
    (m) => m[1] ?? '',
  );
  assert.ok(scripts.some((s) => s.endsWith('/app.js')) && scripts.some((s) => s.endsWith('/uplot.css')));
  for (const asset of scripts) {
    const r = await http(tcp, 'GET', `/dashboard/${asset}`);
    assert.equal(r.status, 200, asset);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(r.headers['content-type'] ?? '', asset.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
  }

  // Acting: refused without the token (a token in the URL is no token), done with it.
  const restart = { action: 'restart', targets: ['web'] };
  const bare = await http(tcp, 'POST', '/v1/actions', { body: restart });
  assert.equal(bare.status, 401, bare.text);
  assert.match(bare.text, /EMP_CONTROL_UNAUTHORIZED/);
  assert.match(bare.text, new RegExp(tokenFile));
  const inUrl = await http(tcp, 'POST', `/v1/actions?token=${token}`, { body: restart });
  assert.equal(inUrl.status, 401);
  const wrong = await http(tcp, 'POST', '/v1/actions', {
    body: restart,
    headers: { authorization: `Bearer ${'x'.repeat(token.length)}` },
  });
  assert.equal(wrong.status, 401);
  const from = emp.lines.length;
  const ok = await http(tcp, 'POST', '/v1/actions', {
    body: restart,
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(ok.status, 200, ok.text);
  await emp.waitLine((l) => l.event === 'control-action' && l.via === 'tcp', 'the restart, over TCP', from);

  // With the token, but from another origin or site, or through a rebound host name: refused.
  const bearer = { authorization: `Bearer ${token}` };
  for (const headers of [
    { ...bearer, origin: 'http://evil.example' },
    { ...bearer, 'sec-fetch-site': 'cross-site' },
    { ...bearer, 'sec-fetch-site': 'same-site' },
    { ...bearer, host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
  ]) {
    const r = await http(tcp, 'POST', '/v1/actions', { body: restart, headers });
    assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(r.text, /EMP_CONTROL_FORBIDDEN/);
  }
  // The login cookie alone is not enough from a browser: the page's custom header must come too.
  const cookie = await http(tcp, 'POST', '/v1/login', {
    body: { token },
    headers: { 'x-emperor-request': '1' },
  });
  assert.equal(cookie.status, 200, cookie.text);
  const setCookie = cookie.headers['set-cookie']?.[0] ?? '';
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  const jar = { cookie: setCookie.split(';')[0] ?? '' };
  assert.equal((await http(tcp, 'POST', '/v1/actions', { body: restart, headers: jar })).status, 403);
  const marked = await http(tcp, 'POST', '/v1/actions', {
    body: restart,
    headers: { ...jar, 'x-emperor-request': '1' },
  });
  assert.equal(marked.status, 200, marked.text);

  // What only the control socket serves is not on the port.
  for (const [method, path] of [
    ['GET', '/v1/vassals/web'],
    ['POST', '/v1/signal'],
    ['POST', '/v1/rescan'],
  ] as const) {
    const r = await http(tcp, method, path, { headers: bearer, ...(method === 'POST' ? { body: {} } : {}) });
    assert.equal(r.status, 404, `${method} ${path}`);
  }

  // Rotation as docs/dashboard.md says: a new token written into the file is used at once, the
  // old one is refused, and the file keeps its mode.
  execFileSync('sh', ['-c', `head -c 32 /dev/urandom | base64 | tr -d "/+=" > ${tokenFile}`]);
  const fresh = readFileSync(tokenFile, 'utf8').trim();
  assert.notEqual(fresh, token);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o640);
  assert.equal(
    (await http(tcp, 'POST', '/v1/actions', { body: restart, headers: bearer })).status,
    401,
    'the old token after rotation',
  );
  const rotated = await http(tcp, 'POST', '/v1/actions', {
    body: restart,
    headers: { authorization: `Bearer ${fresh}` },
  });
  assert.equal(rotated.status, 200, rotated.text);

  // The control socket serves the same page; its permissions are the authentication.
  const socket = { socketPath: controlSocket(emp) };
  assert.equal((await http(socket, 'GET', '/dashboard/')).status, 200);
  assert.deepEqual(JSON.parse((await http(socket, 'GET', '/v1/session')).text), {
    transport: 'socket',
    can_act: true,
  });
  // ... but a browser page of another origin (through a tunnel) may not act through it either.
  const tunneled = await http(socket, 'POST', '/v1/actions', {
    body: restart,
    headers: { host: 'localhost:8080', origin: 'http://evil.example' },
  });
  assert.equal(tunneled.status, 403);
  // A page on another name that resolves to the tunnel (DNS rebinding) may not even read; the CLI
  // and curl may name any host.
  const rebound = await http(socket, 'GET', '/v1/status', {
    headers: { host: 'evil.example:8080', 'sec-fetch-site': 'same-origin' },
  });
  assert.equal(rebound.status, 403);
  assert.equal((await http(socket, 'GET', '/v1/status', { headers: { host: 'emperor' } })).status, 200);
});

void test('dashboard in a browser: live updates, a crash with its stderr, actions only with the token, a screenshot', async (t) => {
  assert.ok(browser);
  const { emp, port, token } = await dashboard(t, {
    'web.ini': '[vassal]\nexec = /bin/sleep 1000\nprocesses = 2\n',
    'api.ini': SLEEPER,
  });
  await emp.waitLine((l) => l.event === 'running' && l.vassal === 'web', 'web running');
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = watchErrors(page);
  const base = `http://127.0.0.1:${port}`;
  t.after(() => {
    if (errors.length > 0) console.log('page errors:', errors);
  });
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready]');
  await page.waitForSelector('tr[data-name="web"] .state.running');
  await page.waitForSelector('.live.on');

  // A vassal dropped into the watched directory appears without a reload.
  let loads = 0;
  page.on('load', () => (loads += 1));
  emp.write('later.ini', SLEEPER);
  await page.waitForSelector('tr[data-name="later"] .state.running', { timeout: 30_000 });
  // A crash: backoff, in the list of what needs attention, with its last stderr lines.
  emp.write('crash.ini', `[vassal]\nexec = ${process.execPath} ${join(FIXTURES, 'exits-after.mjs')}\n`);
  await page.waitForSelector('.problem[data-name="crash"] .state.backoff', { timeout: 30_000 });
  const card = (await page.textContent('.problem[data-name="crash"]')) ?? '';
  assert.match(card, /crashing with 1/);
  assert.match(card, /exited with code 1/);
  // A crash that ends as Node's do (stack frames, then `Node.js vX`): the row does not sum it up
  // with `Node.js v20.0.0`, and the card opens the whole log, where the start of it is.
  const script = join(tempDir(t), 'node-like-crash.sh');
  writeFileSync(
    script,
    [
      'echo "Error: cannot open /srv/app/config.json" >&2',
      ...Array.from({ length: 6 }, (_, i) => `echo "    at frame${i} (app.js:${i}:1)" >&2`),
      'echo "}" >&2',
      'echo "Node.js v20.0.0" >&2',
      'exit 2',
    ].join('\n'),
  );
  emp.write('nodey.ini', `[vassal]\nexec = /bin/sh ${script}\n`);
  await page.waitForSelector('.problem[data-name="nodey"] .state.backoff', { timeout: 30_000 });
  const summary = (await page.textContent('tr[data-name="nodey"] td:last-child')) ?? '';
  // Its error line is above the 5 stderr lines a status carries: the row says where to look.
  assert.equal(summary, 'exited with code 2 · the cause is in its log');
  await page.click('.problem[data-name="nodey"] button.open-log');
  await page.waitForSelector('.detail h2:has-text("nodey")');
  await page.waitForFunction(
    `document.querySelector('.detail pre.log').textContent.includes('Error: cannot open')`,
  );
  // A file with an error: its file, line and what would be valid, at first glance.
  emp.write('broken.ini', '[vassal]\nexec = /bin/sleep 1000\nprocesses = abc\n');
  await page.waitForSelector('.problem[data-name="broken"] .state.failed', { timeout: 30_000 });
  const broken = (await page.textContent('.problem[data-name="broken"]')) ?? '';
  assert.match(broken, /broken\.ini:3/);
  assert.match(broken, /expected an integer/);
  assert.match(broken, /fix it in \S*broken\.ini and save/);
  assert.match(broken, /fix it in \S*broken\.ini and save/);
  // Fixed as the card says (edit the line, save): it runs, and the card goes away by itself.
  emp.write('broken.ini', '[vassal]\nexec = /bin/sleep 1000\nprocesses = 2\n');
  await page.waitForSelector('tr[data-name="broken"] .state.running', { timeout: 30_000 });
  await page.waitForSelector('.problem[data-name="broken"]', { state: 'detached' });
  assert.equal(loads, 0, 'no reload');
  assert.equal(errors.length, 0, `errors while loading and updating: ${errors.join('; ')}`);

  // Read-only: the buttons are off, and the API refuses the page's own request.
  await page.click('tr[data-name="api"]');
  await page.waitForSelector('.detail button[data-action="restart"][disabled]');
  const refused = await page.evaluate(async () => {
    const r = await fetch('/v1/actions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-emperor-request': '1' },
      body: JSON.stringify({ action: 'restart', targets: ['api'] }),
    });
    return r.status;
  });
  assert.equal(refused, 401);

  // A page of another origin (another port of this host) posting with the browser's cookies: refused.
  const evil: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>evil</title>');
  });
  const evilPort = await freePort();
  await new Promise<void>((done) => evil.listen(evilPort, '127.0.0.1', done));
  t.after(
    () =>
      new Promise<void>((done) => {
        evil.close(() => {
          done();
        });
      }),
  );

  // Log in with the token (the form sets the HttpOnly cookie), then restart through the button.
  await page.fill('input[name="token"]', 'not-the-token-at-all');
  await page.click('form.login button');
  await page.waitForSelector('.notice.error');
  await page.fill('input[name="token"]', token);
  await page.click('form.login button');
  await page.waitForSelector('.detail button[data-action="restart"]:not([disabled])');
  page.on('dialog', (d) => void d.accept());
  const from = emp.lines.length;
  await page.click('.detail button[data-action="restart"]');
  await emp.waitLine(
    (l) => l.event === 'control-action' && l.vassals === 'api' && l.via === 'tcp',
    'restart of api from the page',
    from,
  );
  await emp.waitLine((l) => l.event === 'spawn' && l.vassal === 'api', 'api spawned again', from);

  const other = await context.newPage();
  const otherErrors: number[] = [];
  other.on('response', (r) => {
    if (r.url().endsWith('/v1/actions')) otherErrors.push(r.status());
  });
  await other.goto(`http://127.0.0.1:${evilPort}/`);
  await other.evaluate(async (target) => {
    await fetch(target, {
      method: 'POST',
      mode: 'no-cors',
      credentials: 'include',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ action: 'stop', targets: ['web'] }),
    });
  }, `${base}/v1/actions`);
  await waitFor(() => otherErrors.length > 0 || undefined, { what: 'the cross-origin POST answered' });
  assert.deepEqual(otherErrors, [403]);
  await other.close();

  // The charts and the log tail of the selected vassal.
  await page.click('tr[data-name="web"]');
  await page.waitForSelector('.detail .charts .uplot');

  // The screenshot, for docs/dashboard.md: not blank (a blank or broken page has a handful of colours).
  await page.click('tr[data-name="crash"]');
  await page.waitForSelector('.detail .charts .uplot');
  const png = await page.screenshot();
  const colours = Number(await page.evaluate(`(${COUNT_COLOURS})('${png.toString('base64')}')`));
  assert.ok(colours > 50, `the screenshot has ${colours} colours`);
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'img') : emp.dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dashboard.png'), png);

  // The only errors since: the two refusals this test asked for.
  assert.deepEqual(
    errors.map((e) => e.replace(/127\.0\.0\.1:\d+/, 'HOST')),
    [
      'console: Failed to load resource: the server responded with a status of 401 (Unauthorized) (http://HOST/v1/actions)',
      'console: Failed to load resource: the server responded with a status of 401 (Unauthorized) (http://HOST/v1/login)',
    ],
  );
});

void test('--dashboard and the `dashboard` key of --config: a bad address is a usage error naming its line', async (t) => {
  const dir = tempDir(t);
  const run = [
    'run',
    '--vassals',
    join(dir, 'v'),
    '--log-dir',
    join(dir, 'l'),
    '--control',
    join(dir, 'c.sock'),
  ];
  const r = await runCli([...run, '--dashboard', 'abc']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^emperor: --dashboard expects HOST:PORT or PORT, got `abc`/);
  const config = join(dir, 'emperor.ini');
  writeFileSync(config, '[emperor]\ndashboard = abc\n');
  const bad = await runCli([...run, '--config', config]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, new RegExp(`^emperor: ${config}:2: \`dashboard\` expects HOST:PORT or PORT`));

  // The key as docs/cli.md shows it serves the dashboard.
  const port = await freePort();
  writeFileSync(config, `[emperor]\ndashboard = 127.0.0.1:${port}\n`);
  const emp = await startEmperor(t, { args: ['--config', config] });
  await emp.waitLine((l) => l.event === 'dashboard-listening', 'dashboard-listening');
  const page = await http({ port }, 'GET', '/dashboard/');
  assert.equal(page.status, 200);
});
