import type { Tiers } from '../auth/tiers.ts';
import { ApiError } from '../errors/index.ts';

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

/** Seconds a client refused for overload is asked to wait before retrying. */
const OVERLOAD_RETRY_AFTER_S = 2;

/**
 * Throws 503 `server_overloaded` once `waiting` jobs for the model reach the tier's shed point.
 * Lower tiers shed first; QUEUE_MAX_WAITING is the ceiling for all.
 */
export function refuseIfShed(
  model: string,
  tier: string,
  waiting: number,
  { queueMaxWaiting, shedAt: points }: { queueMaxWaiting: number; shedAt: Record<string, number> },
): void {
  const shedAt = Math.min(queueMaxWaiting, Object.hasOwn(points, tier) ? points[tier]! : queueMaxWaiting);
  if (waiting < shedAt) return;
  const why = shedAt < queueMaxWaiting ? `; tier '${tier}' requests are refused from ${shedAt} waiting` : '';
  throw new ApiError(
    'server_overloaded',
    `${waiting} requests are already waiting for model '${model}'${why}`,
    {
      details: { queue_depth: waiting },
      headers: { 'Retry-After': String(OVERLOAD_RETRY_AFTER_S) },
    },
  );
}
