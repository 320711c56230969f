// Users and groups through NSS: Node has no getpwnam, and /etc/passwd misses LDAP and sssd
// users, so ask `getent` as the C library would (SPEC §8.9).
import { execFileSync } from 'node:child_process';
import type { SystemLookup } from '@emperor/config';

function getent(database: 'passwd' | 'group', name: string): string[] | undefined {
  try {
    const line = execFileSync('getent', [database, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      // It runs on the daemon's event loop: a hung NSS (LDAP down) must not stall it for long.
      timeout: 1000,
    });
    return line.split('\n')[0]?.split(':');
  } catch {
    return undefined; // exit 2: no such entry (or no getent at all: names then cannot resolve)
  }
}

function id(field: string | undefined): number | undefined {
  return field !== undefined && /^[0-9]+$/.test(field) ? Number(field) : undefined;
}

const MISS_TTL_MS = 10_000;

function recentMiss(misses: Map<string, number>, name: string): boolean {
  const at = misses.get(name);
  return at !== undefined && Date.now() - at < MISS_TTL_MS;
}

/** A lookup that asks getent once per known name, and again for a missing one after a while. */
export function getentLookup(): SystemLookup {
  const users = new Map<string, { uid: number; gid: number }>();
  const groups = new Map<string, { gid: number }>();
  const userMisses = new Map<string, number>();
  const groupMisses = new Map<string, number>();
  const names = new Map<number, string>();
  const nameMisses = new Map<string, number>();
  return {
    userById(uid) {
      const key = String(uid);
      if (!names.has(uid) && !recentMiss(nameMisses, key)) {
        const name = getent('passwd', key)?.[0];
        if (name) names.set(uid, name);
        else nameMisses.set(key, Date.now());
      }
      const name = names.get(uid);
      return name === undefined ? undefined : { name };
    },
    user(name) {
      // Hits are kept; a miss is asked again after MISS_TTL_MS, so a user created after the
      // emperor started is seen, and a slow NSS is not asked at every scan.
      if (!users.has(name) && !recentMiss(userMisses, name)) {
        const f = getent('passwd', name);
        const uid = id(f?.[2]);
        const gid = id(f?.[3]);
        if (uid !== undefined && gid !== undefined) users.set(name, { uid, gid });
        else userMisses.set(name, Date.now());
      }
      return users.get(name);
    },
    group(name) {
      if (!groups.has(name) && !recentMiss(groupMisses, name)) {
        const gid = id(getent('group', name)?.[2]);
        if (gid !== undefined) groups.set(name, { gid });
        else groupMisses.set(name, Date.now());
      }
      return groups.get(name);
    },
  };
}
