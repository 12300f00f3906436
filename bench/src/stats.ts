/** Nearest-rank percentile of an unsorted sample (p in 0..100); NaN for an empty one. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** {@link fmt} with a `+` before a non-negative number: a difference ("+412.2", "-0.3"). */
export const fmtSigned = (n: number, digits = 1): string => (n >= 0 ? `+${fmt(n, digits)}` : fmt(n, digits));
