// Which files in a watched directory are vassals (SPEC §3). Everything else is ignored, so
// editors' swap and backup files never start an app.

const VASSAL_FILE = /^([A-Za-z0-9._-]+)\.ini$/;

/** The vassal name for an accepted file name (`shop.ini` -> `shop`), or undefined if ignored. */
export function vassalNameOf(fileName: string): string | undefined {
  // Dotfiles include vim's `.shop.ini.swp` and rsync's `.shop.ini.XXXXXX` temporaries.
  if (fileName.startsWith('.')) return undefined;
  const m = VASSAL_FILE.exec(fileName);
  // `*~`, `*.swp`, `*.swx`, `#*#` and `*.tmp` cannot end in `.ini` nor contain `#`, so the
  // pattern already refuses them; the rule is written out in docs/config.md.
  return m?.[1];
}
