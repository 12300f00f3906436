import type { Tiers } from '../auth/tiers.ts';

/**
 * Tier-aware load shedding: as a model's queue fills, lower tiers are refused first. A tier's
 * shed point is the model's waiting depth from which its requests get 503 `server_overloaded`.
 *
 * Default (no `shed_at` in the tier table): by rank of the tier's `priority` among the distinct
 * priorities of the table, highest first — rank r of n sheds at ceil(QUEUE_MAX_WAITING × (n − r) / n).
 * The default table with QUEUE_MAX_WAITING 24: enterprise 24, pro 16, free 8. The top tier
 * always gets QUEUE_MAX_WAITING, which stays the hard ceiling for everyone: an explicit
 * `shed_at` above it is a configuration error (env.ts).
 */
export function shedPoints(tiers: Tiers, queueMaxWaiting: number): Record<string, number> {
  const ranks = [...new Set(Object.values(tiers).map((t) => t.priority))].sort((a, b) => a - b);
  const n = ranks.length;
  const points: Record<string, number> = {};
  for (const [name, t] of Object.entries(tiers)) {
    const r = ranks.indexOf(t.priority);
    points[name] = t.shed_at ?? Math.max(1, Math.ceil((queueMaxWaiting * (n - r)) / n));
  }
  return points;
}

/** The depth at which every tier is refused: /ready's default threshold. */
export const topShedPoint = (points: Record<string, number>): number => Math.max(...Object.values(points));
