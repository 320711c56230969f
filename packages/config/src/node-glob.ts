// `nodes` (docs/fleet.md, "Placement"): shell-style globs on the node name, which hosts run a
// vassal. `*` any run of characters, `?` one, `[a-z]`/`[!0-9]` a class; nothing else is special,
// so a plain name matches only itself.

/** The glob as a whole-name regular expression, or the reason it is no glob. */
export function nodeGlob(glob: string): { ok: true; re: RegExp } | { ok: false; message: string } {
  if (!/^[A-Za-z0-9._\-*?[\]!^]+$/.test(glob))
    return {
      ok: false,
      message: `\`${glob}\` is not a glob of node names: letters, digits, \`.\`, \`_\`, \`-\` and \`*\`, \`?\`, \`[...]\``,
    };
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) return { ok: false, message: `\`[\` opens a class that no \`]\` closes` };
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!') || body.startsWith('^')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else if (c === ']') return { ok: false, message: '`]` closes no class' };
    else re += c.replace(/[.^]/g, '\\$&');
  }
  try {
    return { ok: true, re: new RegExp(`${re}$`) };
  } catch {
    // The classes are copied as written: `[9-0]` or `[b-*]` is a range that runs backwards.
    return {
      ok: false,
      message: `\`${glob}\` has a class whose range runs backwards; write ranges low to high (\`[0-9]\`, \`[a-z]\`)`,
    };
  }
}

/** Whether a vassal whose `nodes` are these globs runs on `node`. */
export function placedOn(nodes: readonly string[], node: string): boolean {
  return nodes.some((g) => {
    const r = nodeGlob(g);
    return r.ok && r.re.test(node);
  });
}
