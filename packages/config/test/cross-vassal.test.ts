// Who owns an address across vassals: the first claimant keeps it, a refused newcomer claims
// nothing, and a holder that moves or goes frees its old addresses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossVassalIssues, parseVassal, SocketClaims, type VassalConfig } from '../src/index.js';
import { goldenOptions } from './golden-options.js';

function config(name: string, ...sockets: string[]): VassalConfig {
  const r = parseVassal(
    ['[vassal]', 'exec = node a.js', ...sockets.map((s) => `socket = ${s}`)].join('\n'),
    goldenOptions(`${name}.ini`),
  );
  assert.ok(r.ok, r.ok ? '' : r.errors[0]?.message);
  return r.config;
}

void test('SocketClaims: overlaps with other vassals only; set replaces, delete frees', () => {
  const claims = new SocketClaims();
  const web = config('web', '127.0.0.1:8080', 'unix:/run/web.sock');
  claims.set({ name: 'web', file: 'web.ini' }, web.sockets);
  assert.deepEqual(claims.clashes('web', web.sockets), [], 'its own claims are no clash');
  const api = config('api', ':8080', '127.0.0.2:8081', 'unix:/run/web.sock');
  assert.deepEqual(
    claims.clashes('api', api.sockets).map((c) => [c.socket.address, c.held.address, c.holder.name]),
    [
      [':8080', '127.0.0.1:8080', 'web'],
      ['unix:/run/web.sock', 'unix:/run/web.sock', 'web'],
    ],
  );
  claims.set({ name: 'web', file: 'web.ini' }, config('web', '127.0.0.1:9090').sockets);
  assert.deepEqual(claims.clashes('api', api.sockets), [], 'moving away frees the old addresses');
  claims.set({ name: 'api', file: 'api.ini' }, api.sockets);
  claims.delete('api');
  assert.deepEqual(claims.clashes('other', api.sockets), [], 'delete frees them all');
});

void test('crossVassalIssues: the older file keeps the address, whatever the order given', () => {
  const vassal = (name: string, mtimeMs: number, ...sockets: string[]) => ({
    file: `${name}.ini`,
    name,
    config: config(name, ...sockets),
    mtimeMs,
  });
  const issues = crossVassalIssues([
    vassal('a', 300, '127.0.0.1:8080', '127.0.0.1:8082'),
    vassal('b', 100, ':8080'),
    vassal('c', 400, '127.0.0.1:8082'),
  ]);
  assert.deepEqual(
    issues.map((i) => [i.file, i.line, i.code]),
    [['a.ini', 3, 'EMP_VASSAL_SOCKET_CONFLICT']],
    'a is refused whole: c may have 8082',
  );
  assert.match(issues[0]?.message ?? '', /of vassal `b` \(b\.ini:3\), which claimed it first/);
});
