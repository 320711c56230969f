// The dashboard's files: the page (packages/daemon/web, compiled by `tsc -b` at `npm ci`), its
// stylesheet, and uPlot from node_modules; nothing from a CDN, so it works with no internet.
// Read on the first request only (an emperor nobody looks at holds none of it), then from memory.
// They are served under `assets/HASH/` (HASH of their contents): cached for a year, as nothing at
// that URL ever changes; the page itself is never cached, so a new emperor's page loads new assets.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { ServerResponse } from 'node:http';
import { ControlError } from './errors.js';

const COMPILED = new URL('../../web/', import.meta.url); // dist/src/control -> dist/web
const SOURCE = new URL('../../../web/', import.meta.url); // dist/src/control -> web

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** Every response of the dashboard: no framing by another site, no sniffing, no referrer. */
const SECURITY = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

interface Assets {
  readonly hash: string;
  readonly files: ReadonlyMap<string, Buffer>;
  readonly page: Buffer;
}

let loaded: Assets | undefined;

function load(): Assets {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const uplot = pathToFileURL(require.resolve('uplot'));
  const files = new Map<string, Buffer>([
    ['app.js', readFileSync(new URL('app.js', COMPILED))],
    ['style.css', readFileSync(new URL('style.css', SOURCE))],
    // Loaded by the page only when a chart is first shown: the list paints without it.
    ['uplot.js', readFileSync(new URL('uPlot.iife.min.js', uplot))],
    ['uplot.css', readFileSync(new URL('uPlot.min.css', uplot))],
  ]);
  const h = createHash('sha256');
  for (const [name, body] of files) h.update(name).update(body);
  const hash = h.digest('hex').slice(0, 16);
  const page = Buffer.from(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>emperor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/${hash}/uplot.css">
<link rel="stylesheet" href="assets/${hash}/style.css">
<script type="module" src="assets/${hash}/app.js"></script>
</head>
<body>
<noscript>The emperor dashboard needs JavaScript; <code>emperor status</code> shows the same.</noscript>
</body>
</html>
`);
  return (loaded = { hash, files, page });
}

/** Answers GET `/dashboard/` and `/dashboard/assets/...`; `rest` is the path after `/dashboard`. */
export function serveDashboard(rest: string, res: ServerResponse, head: boolean): void {
  let assets: Assets;
  try {
    assets = load();
  } catch (err) {
    throw new ControlError(
      'EMP_CONTROL_NOT_FOUND',
      `the dashboard's files are missing (${(err as Error).message}); run \`npm ci\` (or \`npx tsc -b\`) in the emperor's checkout`,
    );
  }
  if (rest === '' || rest === '/') {
    reply(res, head, assets.page, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
    });
    return;
  }
  const m = /^\/assets\/([0-9a-f]+)\/([\w.-]+)$/.exec(rest);
  const body = m?.[1] === assets.hash ? assets.files.get(m[2] ?? '') : undefined;
  if (m?.[2] === undefined || body === undefined)
    throw new ControlError(
      'EMP_CONTROL_NOT_FOUND',
      `no dashboard file ${rest.slice(0, 100)}; reload the page`,
    );
  reply(res, head, body, {
    'content-type': TYPES[m[2].split('.').pop() ?? ''] ?? 'application/octet-stream',
    'cache-control': 'public, max-age=31536000, immutable',
  });
}

function reply(res: ServerResponse, head: boolean, body: Buffer, headers: Record<string, string>): void {
  res.writeHead(200, { ...SECURITY, ...headers, 'content-length': body.length });
  res.end(head ? undefined : body);
}
