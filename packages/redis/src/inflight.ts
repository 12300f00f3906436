import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { withScripts } from './scripts.ts';

/**
 * A user's jobs in flight (admitted, not ended), as two sorted sets per user — waiting and
 * running — of job ids scored by an expiry on Redis's clock. Every change is one atomic script,
 * so the counts are exact across api replicas; every entry is a lease, so a crashed api gives a
 * user's places back on its own (inflight-*.lua).
 */

/** A user's caps (the tier's `max_waiting`, `max_concurrent`). */
export interface InflightCaps {
  /** Most jobs of the user waiting to start at once; undefined: no cap. */
  maxWaiting?: number;
  /** Most jobs of the user waiting or running at once; undefined: no cap. */
  maxConcurrent?: number;
}

export interface InflightDecision {
  admitted: boolean;
  /** The user's jobs waiting / running before this one (after expired entries were dropped). */
  waiting: number;
  running: number;
}

export async function admitInflight(
  redis: Redis,
  keys: Keys,
  userId: string,
  jobId: string,
  caps: InflightCaps,
  waitLeaseMs: number,
): Promise<InflightDecision> {
  const [admitted, waiting, running] = await withScripts(redis).inflightAdmit(
    keys.inflight(userId, 'waiting'),
    keys.inflight(userId, 'running'),
    caps.maxWaiting ?? 0,
    caps.maxConcurrent ?? 0,
    jobId,
    waitLeaseMs,
  );
  return { admitted: admitted === 1, waiting, running };
}

/** The job started on a worker: waiting → running, with a lease of `runLeaseMs`. */
export async function startInflight(
  redis: Redis,
  keys: Keys,
  userId: string,
  jobId: string,
  runLeaseMs: number,
): Promise<void> {
  await withScripts(redis).inflightStart(
    keys.inflight(userId, 'waiting'),
    keys.inflight(userId, 'running'),
    jobId,
    runLeaseMs,
  );
}

/** Renews the running leases of `jobIds` (one user's); returns how many were still there. */
export async function renewInflight(
  redis: Redis,
  keys: Keys,
  userId: string,
  jobIds: string[],
  runLeaseMs: number,
): Promise<number> {
  if (jobIds.length === 0) return 0;
  return withScripts(redis).inflightRenew(keys.inflight(userId, 'running'), runLeaseMs, ...jobIds);
}

/** The job ended (or was never enqueued): it leaves both sets (one script, not a MULTI of four commands). */
export async function endInflight(redis: Redis, keys: Keys, userId: string, jobId: string): Promise<void> {
  await withScripts(redis).inflightEnd(
    keys.inflight(userId, 'waiting'),
    keys.inflight(userId, 'running'),
    jobId,
  );
}
