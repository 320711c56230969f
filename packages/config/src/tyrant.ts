// Tyrant mode (`emperor run --tyrant`, uWSGI's `emperor-tyrant`): a root emperor runs each vassal
// as the owner of its file, so that whoever may write a file into the vassal directory gets a
// process with their own rights and no more. A root-owned file would make that root.
import type { IssueList } from './issue.js';
import type { RawEntry } from './read-lines.js';
import type { FileOwner, SystemLookup, VassalConfig } from './types.js';

/** Lines of the `[vassal]` keys that name a user or group, for the messages. */
export interface PrincipalLines {
  readonly user: number | undefined;
  readonly group: number | undefined;
}

/** `config` run as `owner` (user = the owner's uid, gid = the file's gid), or errors in `issues`. */
export function asFileOwner(
  config: VassalConfig,
  owner: FileOwner,
  lookup: SystemLookup | undefined,
  lines: PrincipalLines,
  issues: IssueList,
): VassalConfig {
  if (owner.uid === 0 || owner.gid === 0) {
    issues.error(
      'EMP_CONFIG_TYRANT_ROOT',
      undefined,
      undefined,
      `tyrant mode runs each vassal as the owner of its file, and this file belongs to ${owner.uid === 0 ? 'uid 0' : 'gid 0'} (root): give it to the user and group the app runs as (chown USER:GROUP FILE)`,
    );
    return config;
  }
  if (config.user !== undefined && config.user.uid !== owner.uid)
    issues.error(
      'EMP_CONFIG_TYRANT_USER',
      lines.user,
      'user',
      `\`user = ${config.user.name}\` (uid ${config.user.uid}) is not the owner of the file (uid ${owner.uid}): in tyrant mode a vassal runs as the owner of its file; drop \`user\` or chown the file`,
    );
  if (config.group !== undefined && config.group.gid !== owner.gid)
    issues.error(
      'EMP_CONFIG_TYRANT_USER',
      lines.group,
      'group',
      `\`group = ${config.group.name}\` (gid ${config.group.gid}) is not the group of the file (gid ${owner.gid}): in tyrant mode a vassal runs with the group of its file; drop \`group\` or chgrp the file`,
    );
  // A user name gets its supplementary groups (initgroups); a uid without passwd entry gets none.
  const name = lookup?.userById?.(owner.uid)?.name ?? String(owner.uid);
  return { ...config, user: { name, uid: owner.uid, gid: owner.gid }, group: undefined };
}

/**
 * uWSGI's own `uid`/`gid` lines in tyrant mode: uWSGI changes ids only when it starts as root,
 * and it starts as the file's owner, so they raise nothing (`uid = 0` included). Said as a
 * warning, since the file's author may believe otherwise.
 */
export function uwsgiIdWarnings(entries: readonly RawEntry[], owner: FileOwner, issues: IssueList): void {
  for (const e of entries) {
    if (e.key !== 'uid' && e.key !== 'gid') continue;
    const own = e.key === 'uid' ? `uid ${owner.uid}` : `gid ${owner.gid}`;
    issues.warn(
      'EMP_CONFIG_TYRANT_UWSGI_ID',
      e.line,
      e.key,
      `\`${e.key} = ${e.value}\` does nothing in tyrant mode: uWSGI starts as the owner of the file (${own}) and changes ids only when it starts as root; drop the line, or chown the file to the user the app runs as`,
    );
  }
}
