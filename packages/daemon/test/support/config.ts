import { DEFAULTS, type VassalConfig } from '@emperor/config';

/** A complete config with SPEC §3 defaults, for tests of the pure machine. */
export function testConfig(overrides: Partial<VassalConfig> = {}): VassalConfig {
  return Object.freeze({
    ...DEFAULTS,
    name: 'app',
    file: '/srv/vassals/app.ini',
    exec: 'app',
    argv: ['app'],
    chdir: '/srv/vassals',
    sockets: [],
    reload: { kind: 'restart' },
    ...overrides,
  } satisfies VassalConfig);
}
