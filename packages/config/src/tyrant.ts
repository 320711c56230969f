// Tyrant mode (`emperor run --tyrant`, uWSGI's `emperor-tyrant`): a root emperor runs each vassal
// as the owner of its file, so that whoever may write a file into the vassal directory gets a
// process with their own rights and no more. A root-owned file would make that root.
import type { IssueList } from './issue.js';
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
