import type { Logger } from '@llmgw/observability';
import {
  budgetKeyMonth,
  endOfUtcDay,
  type Hold,
  quotaKeyDay,
  settleHold,
  untilRedisTakes,
} from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { WorkerMetrics } from './metrics.ts';

export interface QuotaSettleOptions {
  /** A `command` connection: fails at once while Redis is down, so each try is quick. */
  redis: Redis;
  log: Logger;
  metrics: Pick<WorkerMetrics, 'quotaSettleRetries'>;
  /** Wait before the first retry; doubles per retry up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** How a settlement ended: applied, given up because its day is over, or the connection closed. */
export type SettleOutcome = 'settled' | 'day_over' | 'connection_closed';

/**
 * Moves a quota reservation to the real usage (`delta` = used − reserved), retrying with backoff
 * until Redis takes it. One failed try would leave the user charged the whole max_tokens for the
 * rest of the day. It gives up only when retrying is pointless: the key's UTC day is over (the
 * key expired with it, and the settle script leaves an expired key alone), or the connection was
 * closed for good (worker shutdown).
 *
 * Runs in the background: the caller does not wait, so a Redis outage never holds a job slot.
 * Retries are at-least-once: a try whose reply was lost after Redis applied it (the connection
 * died mid-command) is applied again.
 */
export function settleQuotaEventually(
  key: string,
  delta: number,
  opts: QuotaSettleOptions,
): Promise<SettleOutcome> {
  return settleEventually({ kind: 'counter', key }, delta, opts);
}

/** A token bucket (tokens per minute) lives two windows after its last use: no point after that. */
const BUCKET_LIFE_MS = 120_000;

/**
 * The same for any hold a job carries (a tokens-per-minute bucket, a monthly budget): retried
 * until Redis takes it, or until the counter is gone anyway (its day or month over, its bucket
 * expired and so full again).
 */
export function settleEventually(
  hold: Pick<Hold, 'kind' | 'key'>,
  delta: number,
  { redis, log, metrics, firstDelayMs = 100, maxDelayMs = 5000 }: QuotaSettleOptions,
): Promise<SettleOutcome> {
  const { key } = hold;
  const expiresAt = hold.kind === 'bucket' ? Date.now() + BUCKET_LIFE_MS : dayEndMs(key);
  return (async () => {
    const r = await untilRedisTakes(() => settleHold(redis, hold, delta), {
      redis,
      firstDelayMs,
      maxDelayMs,
      giveUpAt: expiresAt,
      onRetry: (attempt, err) => {
        if (attempt === 1)
          log.warn({ quota_key: key, delta, err: err.message }, 'quota_settle_failed_retrying');
        metrics.quotaSettleRetries.inc();
      },
    });
    if (r.end === 'done') {
      if (r.attempts > 1)
        log.info({ quota_key: key, delta, attempts: r.attempts }, 'quota_settled_after_retry');
      return 'settled';
    }
    const outcome: SettleOutcome = r.end === 'gave_up' ? 'day_over' : 'connection_closed';
    log.error(
      { quota_key: key, delta, attempts: r.attempts, reason: outcome, err: r.err.message },
      'quota_settle_gave_up',
    );
    return outcome;
  })();
}

/** End of the quota key's UTC day, ms; a monthly key: end of its month; another shape: end of today. */
function dayEndMs(key: string): number {
  const month = budgetKeyMonth(key);
  if (month) return Date.UTC(Number(month.slice(0, 4)), Number(month.slice(4, 6)), 1);
  const day = quotaKeyDay(key);
  const dayStart = day
    ? Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)))
    : Date.now();
  return endOfUtcDay(dayStart) * 1000;
}
