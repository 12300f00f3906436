/**
 * BullMQ priorities by tier: lower runs first. Every tier is prioritized (none uses priority 0,
 * which would bypass the priority set), so that a job promoted by the starvation guard really
 * overtakes later arrivals of every tier.
 *
 * Starvation guard: a job that has waited `PRIORITY_AGING_MS` is raised to the top priority, so
 * a steady stream of enterprise traffic delays a free-tier request by at most that long plus the
 * top-priority jobs already ahead of it (and QUEUE_TIMEOUT_MS still bounds every wait).
 */
export const TOP_PRIORITY = 1;

const BY_TIER: Record<string, number> = { enterprise: 1, pro: 2, free: 3 };

export function priorityOf(tier: string | undefined, configured?: number): number {
  return configured ?? BY_TIER[tier ?? 'free'] ?? 3;
}
