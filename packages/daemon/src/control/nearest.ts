// "Did you mean": the known names nearest to an unknown one, for `emperor stop shpo`.
import { editDistance as distance } from '@emperor/config/suggest';

/** Up to `max` names, nearest first: substring matches, then by edit distance within a limit. */
export function nearestNames(word: string, names: readonly string[], max = 3): string[] {
  const w = word.toLowerCase().slice(0, 128);
  const limit = Math.max(2, Math.floor(w.length / 2));
  return names
    .map((name) => {
      const n = name.toLowerCase();
      const d = n.includes(w) || w.includes(n) ? 0.5 : distance(w, n);
      return { name, d };
    })
    .filter((c) => c.d <= limit)
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, max)
    .map((c) => c.name);
}
