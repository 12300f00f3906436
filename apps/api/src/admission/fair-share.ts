import type { Logger } from '@llmgw/observability';
import { admitInflight, endInflight, type Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { TierLimits } from '../auth/tiers.ts';
import { ApiError } from '../errors/index.ts';

/**
 * Fair share between the users of a tier.
 *
 * Caps: a tier's `max_waiting` (jobs of one user not started) and `max_concurrent` (waiting or
 * running) are counted in Redis per user (inflight.ts), exact across api replicas. Over either:
 * 429 `concurrency_limit_exceeded` with Retry-After, retryable. BullMQ has no per-user
 * concurrency, so a running cap of its own could not be enforced where jobs start; the in-flight
 * cap bounds running jobs too.
 *
 * Order: a job's BullMQ priority (lower runs first, equal ones FIFO) is its tier's band plus the
 * number of jobs its user already had in flight at admission. A user's burst of 50 gets 0…49 in
 * its band, so another user's single request (0) goes ahead of all but the burst's first: it
 * starts at the next free slot. Bands are FAIR_BAND wide and start at 2, leaving 1 to the
 * starvation guard (queue/queue-watch.ts TOP_PRIORITY), which still lifts any job that waited
 * PRIORITY_AGING_MS above everything.
 *
 * Leases: a waiting entry lasts the queue deadline (a job never waits longer). Once a worker
 * starts the job, the worker holds its user's place until the job ends (RunningPlaces in
 * @llmgw/redis), however its client's connection fares. The api frees a place itself only for a
 * job that never ran: refused, never enqueued, removed from the queue.
 */
export const FAIR_BAND = 1000;

/** BullMQ priority of a job of a tier of `tierPriority` whose user has `inflight` jobs already. */
export function fairPriority(tierPriority: number, inflight: number): number {
  return (tierPriority - 1) * FAIR_BAND + 2 + Math.min(FAIR_BAND - 2, inflight);
}

/** Seconds a client at its concurrency cap is asked to wait: one of its jobs may end any moment. */
const CONCURRENCY_RETRY_AFTER_S = 1;

export interface FairShareOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  /** Lease of a waiting entry: QUEUE_TIMEOUT_MS, plus a margin for the removal in flight. */
  waitLeaseMs: number;
}

export class FairShare {
  constructor(private readonly opts: FairShareOptions) {}

  /**
   * Counts `jobId` against its user's caps, or throws 429 concurrency_limit_exceeded (nothing
   * counted). Returns the user's jobs in flight before this one. Redis errors propagate.
   */
  async admit(userId: string, jobId: string, tier: string, limits: TierLimits): Promise<number> {
    const caps = { maxWaiting: limits.max_waiting, maxConcurrent: limits.max_concurrent };
    const d = await admitInflight(
      this.opts.redis,
      this.opts.keys,
      userId,
      jobId,
      caps,
      this.opts.waitLeaseMs,
    );
    if (d.admitted) return d.waiting + d.running;
    const overWaiting = caps.maxWaiting !== undefined && d.waiting >= caps.maxWaiting;
    const message = overWaiting
      ? `${d.waiting} of your requests are already waiting to start; tier '${tier}' allows ${caps.maxWaiting} waiting`
      : `${d.waiting + d.running} of your requests are already in flight; tier '${tier}' allows ${caps.maxConcurrent} at once`;
    throw new ApiError('concurrency_limit_exceeded', `${message}. Retry when one of them has finished`, {
      details: {
        waiting: d.waiting,
        running: d.running,
        ...(caps.maxWaiting !== undefined && { max_waiting: caps.maxWaiting }),
        ...(caps.maxConcurrent !== undefined && { max_concurrent: caps.maxConcurrent }),
      },
      headers: { 'Retry-After': String(CONCURRENCY_RETRY_AFTER_S) },
    });
  }

  /** The job never ran (refused, never enqueued, removed from the queue): its place is free. */
  ended(userId: string, jobId: string): void {
    // Failing here (Redis down) leaves the entry to its lease.
    endInflight(this.opts.redis, this.opts.keys, userId, jobId).catch((err: Error) =>
      this.opts.log.warn({ job_id: jobId, err: err.message }, 'inflight_end_failed'),
    );
  }
}
