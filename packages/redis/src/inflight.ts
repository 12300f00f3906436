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

/** A running entry counts this long unless renewed; renewed every third of it. */
export const RUN_LEASE_MS = 60_000;

export interface RunningPlacesOptions {
  redis: Redis;
  keys: Keys;
  /** Where a failed write is reported (the entry is then left to its lease). */
  onError(op: 'start' | 'end' | 'renew', err: Error): void;
  runLeaseMs?: number;
}

/**
 * The user's place of each job this worker runs, held until the job ends — not until its client's
 * connection drops: a job that generates counts against its user's `max_concurrent` and fair
 * share for as long as it uses a slot, whoever follows it (issue 21). {@link start} moves the
 * entry to running (again after a requeue), a timer renews the leases of the jobs under way, and
 * {@link end} frees the place once the job is over. A worker that dies stops renewing: its
 * entries expire within the lease, or move to the worker that re-runs the job.
 */
export class RunningPlaces {
  private readonly running = new Map<string, string>();
  private readonly ticker: NodeJS.Timeout;
  private readonly runLeaseMs: number;

  constructor(private readonly opts: RunningPlacesOptions) {
    this.runLeaseMs = opts.runLeaseMs ?? RUN_LEASE_MS;
    this.ticker = setInterval(() => void this.renew(), Math.max(1, Math.floor(this.runLeaseMs / 3)));
    this.ticker.unref();
  }

  async start(userId: string, jobId: string): Promise<void> {
    this.running.set(jobId, userId);
    await startInflight(this.opts.redis, this.opts.keys, userId, jobId, this.runLeaseMs).catch((err: Error) =>
      this.opts.onError('start', err),
    );
  }

  async end(userId: string, jobId: string): Promise<void> {
    this.running.delete(jobId);
    await endInflight(this.opts.redis, this.opts.keys, userId, jobId).catch((err: Error) =>
      this.opts.onError('end', err),
    );
  }

  stop(): void {
    clearInterval(this.ticker);
  }

  /** One script call per user with running jobs here, all sent at once. */
  private async renew(): Promise<void> {
    if (this.running.size === 0) return;
    const byUser = new Map<string, string[]>();
    for (const [jobId, userId] of this.running) {
      const jobs = byUser.get(userId);
      if (jobs) jobs.push(jobId);
      else byUser.set(userId, [jobId]);
    }
    const { redis, keys } = this.opts;
    const results = await Promise.allSettled(
      [...byUser].map(([userId, jobIds]) => renewInflight(redis, keys, userId, jobIds, this.runLeaseMs)),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) this.opts.onError('renew', failed.reason as Error);
  }
}
