// Fixed inputs for the golden and fuzz tests, so expected output never depends on the machine.
import type { ParseOptions, SystemLookup } from '../src/index.js';

export const GOLDEN_DIR = '/srv/vassals';

const USERS: Readonly<Record<string, { uid: number; gid: number }>> = {
  'www-data': { uid: 33, gid: 33 },
  app: { uid: 1000, gid: 1000 },
  '1000': { uid: 1000, gid: 1000 },
};
const GROUPS: Readonly<Record<string, { gid: number }>> = { 'www-data': { gid: 33 }, app: { gid: 1000 } };

export const fakeLookup: SystemLookup = {
  user: (name) => (Object.hasOwn(USERS, name) ? USERS[name] : undefined),
  group: (name) => (Object.hasOwn(GROUPS, name) ? GROUPS[name] : undefined),
};

export function goldenOptions(fileName: string): ParseOptions {
  return {
    file: `${GOLDEN_DIR}/${fileName}`,
    env: { HOME: '/home/app', PORT: '8080', APP_ENV: 'production', EMPTY: '' },
    cpus: 4,
    lookup: fakeLookup,
  };
}
