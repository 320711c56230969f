// Users and groups through NSS: Node has no getpwnam, and /etc/passwd misses LDAP and sssd
// users, so ask `getent` as the C library would (SPEC §8.9).
import { execFileSync } from 'node:child_process';
import type { SystemLookup } from '@emperor/config';

function getent(database: 'passwd' | 'group', name: string): string[] | undefined {
  try {
    const line = execFileSync('getent', [database, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return line.split('\n')[0]?.split(':');
  } catch {
    return undefined; // exit 2: no such entry (or no getent at all: names then cannot resolve)
  }
}

function id(field: string | undefined): number | undefined {
  return field !== undefined && /^[0-9]+$/.test(field) ? Number(field) : undefined;
}

/** A lookup that asks getent once per known name (and again for a name not found). */
export function getentLookup(): SystemLookup {
  const users = new Map<string, { uid: number; gid: number }>();
  const groups = new Map<string, { gid: number }>();
  return {
    user(name) {
      // Only hits are kept: a long-running emperor must see a user created after it started.
      if (!users.has(name)) {
        const f = getent('passwd', name);
        const uid = id(f?.[2]);
        const gid = id(f?.[3]);
        if (uid !== undefined && gid !== undefined) users.set(name, { uid, gid });
      }
      return users.get(name);
    },
    group(name) {
      if (!groups.has(name)) {
        const gid = id(getent('group', name)?.[2]);
        if (gid !== undefined) groups.set(name, { gid });
      }
      return groups.get(name);
    },
  };
}
