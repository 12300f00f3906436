import type { Logger } from '@llmgw/observability';
import type { ErrorType } from '@llmgw/protocol';
import { type Keys, readLedger, recordUsageEventually, usageOutcome, usersWithUsage } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { UsageReport } from './bodies.ts';
import type { Prices } from './prices.ts';
import { daysOf, type UsageQuery } from './query.ts';
import { buildReport } from './report.ts';

export interface UsageLedgerOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  /** USAGE_RETENTION_DAYS. */
  retentionDays: number;
  /** PRICES_JSON: cost columns. */
  prices?: Prices;
}

/** A job the api took off its queue before any worker had it. */
export interface UnrunJob {
  jobId: string;
  userId?: string;
  keyId?: string;
  model: string;
}

/** Whose usage a report may show: one user's (the caller's), or everybody's (the admin's). */
export type UsageScope = { user: string } | 'all';

/**
 * The usage ledger as the api sees it (issue 24 §3, §4): reports, for a user or the admin; and
 * the count of the jobs the api ends itself. Workers count every job that reached one; a job the
 * api removed from its queue first (its client left, its owner cancelled it, its deadline passed)
 * is counted here, with no tokens: it used none, and its status says it ended. Either way one
 * count per job (the ledger's marker).
 */
export class UsageLedger {
  constructor(private readonly opts: UsageLedgerOptions) {}

  get prices(): Prices | undefined {
    return this.opts.prices;
  }

  get retentionDays(): number {
    return this.opts.retentionDays;
  }

  /** A job removed before it ran, ended with `error` (its status): counted, no tokens. In the background. */
  neverRan(job: UnrunJob, error: ErrorType): void {
    const { redis, keys, log, retentionDays } = this.opts;
    if (job.userId === undefined || job.userId === '') return;
    void recordUsageEventually(
      redis,
      keys,
      {
        jobId: job.jobId,
        userId: job.userId,
        ...(job.keyId !== undefined && { keyId: job.keyId }),
        model: job.model,
        outcome: usageOutcome(error),
        usage: { promptTokens: 0, completionTokens: 0 },
        endedAt: Date.now(),
      },
      { retentionDays, log },
    );
  }

  /** The report of `query` over `scope` ({@link usageReport}). */
  report(query: UsageQuery, scope: UsageScope): Promise<UsageReport> {
    return usageReport(this.opts.redis, this.opts.keys, query, scope, this.opts.prices);
  }
}

/**
 * The report of `query` over `scope` (the routes', and `pnpm keys usage`'s). One hash read per
 * user and day: a user's own report reads only theirs; the admin's, every user with usage since
 * `start` (or the one it filters on).
 */
export async function usageReport(
  redis: Redis,
  keys: Keys,
  query: UsageQuery,
  scope: UsageScope,
  prices?: Prices,
): Promise<UsageReport> {
  let users: string[];
  if (scope !== 'all') users = [scope.user];
  else if (query.user !== undefined) users = [query.user];
  else users = await usersWithUsage(redis, keys, Date.parse(`${query.start}T00:00:00Z`));
  const entries = await readLedger(redis, keys, users, daysOf(query));
  return buildReport(entries, query, prices);
}
