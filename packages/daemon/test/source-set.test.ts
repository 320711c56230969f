// Several sources as one desired set: each replaces only its own part; the first definer keeps a name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SourceSet } from '../src/sources/source-set.js';
import type { SourceUpdate, VassalDefinition } from '../src/sources/source.js';

function def(name: string, origin: string): VassalDefinition {
  return {
    name,
    origin,
    identity: origin,
    contentHash: origin,
    bytes: new Uint8Array(),
    readError: undefined,
    size: 0,
    modifiedNs: 0n,
  };
}

function update(...defs: VassalDefinition[]): SourceUpdate {
  return { vassals: new Map(defs.map((d) => [d.name, d])), duplicates: [], changedAt: new Map() };
}

void test('an update replaces only its own source part, and the first definer of a name keeps it', () => {
  const seen: SourceUpdate[] = [];
  const set = new SourceSet(2, (u) => seen.push(u));
  const dirs = set.updater(0);
  const etcd = set.updater(1);
  etcd(update(def('shop', 'etcd://h/p/vassals/shop'), def('api', 'etcd://h/p/vassals/api')));
  dirs(update(def('shop', '/srv/shop.ini')));
  assert.equal(seen.length, 0, 'nothing is handed on before every source has started');
  set.open();
  // At once: `--vassals` order decides.
  assert.equal(seen.at(-1)?.vassals.get('shop')?.origin, '/srv/shop.ini');
  assert.deepEqual(seen.at(-1)?.duplicates, [
    { name: 'shop', origin: 'etcd://h/p/vassals/shop', firstOrigin: '/srv/shop.ini' },
  ]);
  dirs(update());
  assert.deepEqual([...(seen.at(-1)?.vassals.keys() ?? [])].sort(), ['api', 'shop']);
  assert.equal(seen.at(-1)?.vassals.get('shop')?.origin, 'etcd://h/p/vassals/shop');
  // Now the store holds the name: a file appearing later is the duplicate.
  dirs(update(def('shop', '/srv/shop.ini'), def('web', '/srv/web.ini')));
  assert.equal(seen.at(-1)?.vassals.get('shop')?.origin, 'etcd://h/p/vassals/shop');
  assert.deepEqual([...(seen.at(-1)?.vassals.keys() ?? [])].sort(), ['api', 'shop', 'web']);
  assert.equal(seen.at(-1)?.duplicates[0]?.origin, '/srv/shop.ini');
});
