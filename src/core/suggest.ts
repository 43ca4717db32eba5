/**
 * "Did you mean": the nearest known word to a misspelt one. Used for configuration keys and values
 * (src/config) and for command-line options (src/cli), so both suggest by the same rule.
 */

/** Damerau-free Levenshtein distance; small inputs only (key names). */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** The nearest candidate when it is a near miss (dashes and underscores count as the same), else undefined. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase().replace(/-/g, '_');
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  // Near miss: at most a third of the word wrong (and at least 1 edit allowed), or one contains the other.
  const b = best?.toLowerCase();
  if (best !== undefined && b !== undefined && (bestD <= Math.max(1, Math.floor(best.length / 3)) || (w.length >= 4 && (b.includes(w) || w.includes(b))))) return best;
  return undefined;
}
