// Resolves the NAME|GLOB|all arguments of a control request to vassal names.
import picomatch from 'picomatch';
import { ControlError } from './errors.js';
import { nearestNames } from './nearest.js';

const NAME_OR_GLOB = /^[A-Za-z0-9._*?[\]{},!-]{1,255}$/;

/** Every name matched by `targets` (sorted, unique); an argument that matches nothing is an error. */
export function resolveTargets(targets: readonly string[], known: readonly string[]): string[] {
  if (targets.length === 0)
    throw new ControlError('EMP_CONTROL_BAD_REQUEST', 'name at least one vassal, a glob, or `all`');
  const out = new Set<string>();
  for (const t of targets) {
    if (!NAME_OR_GLOB.test(t)) {
      throw new ControlError('EMP_CONTROL_BAD_REQUEST', `\`${t.slice(0, 80)}\` is not a vassal name or glob`);
    }
    if (t === 'all') {
      for (const n of known) out.add(n);
      continue;
    }
    let matched: string[];
    if (picomatch.scan(t).isGlob) {
      const isMatch = picomatch(t, { dot: true });
      matched = known.filter((n) => isMatch(n));
    } else matched = known.filter((n) => n === t);
    if (matched.length === 0) throw unknownVassal(t, known);
    for (const n of matched) out.add(n);
  }
  return [...out].sort();
}

export function unknownVassal(name: string, known: readonly string[]): ControlError {
  const nearest = nearestNames(name, known);
  const hint =
    nearest.length > 0
      ? `; did you mean ${nearest.map((n) => `\`${n}\``).join(', ')}?`
      : known.length > 0
        ? `; known vassals: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}`
        : '; no vassal is running';
  return new ControlError('EMP_VASSAL_UNKNOWN', `no vassal matches \`${name}\`${hint}`, { nearest });
}
