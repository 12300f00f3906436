import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { endOfUtcDay, utcDay } from './limits.ts';
import { untilRedisTakes } from './retry.ts';
import { withScripts } from './scripts.ts';

/**
 * The usage ledger (issue 24 §3): per user and UTC day one hash (keys.usage) with one field per
 * API key × model × outcome, `<key>|<model>|<outcome>`, whose value is `<prompt tokens>
 * <completion tokens> <jobs>`. In the field, `%` and `|` of the key and the model are
 * percent-encoded (so `|` only separates), and the key is empty for a job that came with none
 * (AUTH_MODE=trusted_headers: the user alone). A job is counted once (usage-record-2.lua): its
 * marker (keys.usageCounted) is set in the same atomic step, and every later try finds it.
 */

/**
 * How a job ended, as the ledger counts it: the status `GET /v1/jobs/{id}` reports, with `failed`
 * split once more so that jobs that waited in vain stand apart.
 * - `completed`: it ran to its end;
 * - `cancelled`: its client left, its owner cancelled it, or nobody followed it (status `cancelled`);
 * - `expired`: it never started before its deadline (status `failed`, error `queue_timeout`);
 * - `failed`: any other error (status `failed`).
 */
/** `batch`: a request of a batch (the Batch API), however it ended: the batch's own counts tell. */
export const USAGE_OUTCOMES = ['completed', 'cancelled', 'expired', 'failed', 'batch'] as const;
export type UsageOutcome = (typeof USAGE_OUTCOMES)[number];

/** The outcome of a job that ended with the error type `error` (@llmgw/protocol ErrorType; none: completed). */
export function usageOutcome(error: string | undefined): UsageOutcome {
  if (error === undefined) return 'completed';
  if (error === 'cancelled') return 'cancelled';
  if (error === 'queue_timeout') return 'expired';
  return 'failed';
}

/** Tokens, as the protocol's `Usage` has them. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** Nothing generated, nothing charged: a job that never ran. */
export const NO_USAGE: Readonly<TokenUsage> = Object.freeze({ promptTokens: 0, completionTokens: 0 });

/** How long a job's "counted" marker outlives the count: longer than any retry or re-run of it. */
export const USAGE_COUNTED_TTL_S = 24 * 3600;

const DAY_S = 86_400;

/** One ended job, as the ledger counts it. */
export interface UsageCount {
  jobId: string;
  userId: string;
  /** The API key's public id (`key_…`); absent when none was presented (trusted_headers). */
  keyId?: string;
  model: string;
  outcome: UsageOutcome;
  /** What the job is charged (its quota settlement's numbers); zeros for a job that never ran. */
  usage: TokenUsage;
  /** When it ended (epoch ms): the UTC day it is counted on. */
  endedAt: number;
}

/** A ledger's counters for one user × day × key × model × outcome. */
export interface LedgerEntry {
  /** `YYYYMMDD`, UTC. */
  day: string;
  userId: string;
  /** null: no API key (trusted_headers). */
  keyId: string | null;
  model: string;
  outcome: UsageOutcome;
  promptTokens: number;
  completionTokens: number;
  jobs: number;
}

/** `%` and `|` percent-encoded, the rest as it is (model names keep their `/`: fewer bytes). */
const escapeField = (s: string) => s.replaceAll('%', '%25').replaceAll('|', '%7C');
const unescapeField = (s: string) => s.replaceAll('%7C', '|').replaceAll('%25', '%');

const fieldOf = (keyId: string | undefined, model: string, outcome: UsageOutcome) =>
  `${escapeField(keyId ?? '')}|${escapeField(model)}|${outcome}`;

/** A token count as the script takes it: a whole number, never negative. */
const tokens = (n: number) => Math.max(0, Math.round(n));

/** Start of the UTC day of `ms`, ms. */
const dayStartMs = (ms: number) => endOfUtcDay(ms) * 1000 - DAY_S * 1000;

/**
 * Counts the job in its user's ledger, once: true if counted now, false if it had been already.
 * Then the user goes into the index of users with usage (keys.usageUsers, another slot on a
 * Cluster: a command of its own, as idempotent as the count, so a retry of the whole is safe).
 */
export async function recordUsage(
  redis: Redis,
  keys: Pick<Keys, 'usage' | 'usageCounted' | 'usageUsers'>,
  count: UsageCount,
  retentionDays: number,
): Promise<boolean> {
  const { userId, endedAt } = count;
  const counted = await withScripts(redis).usageRecord(
    keys.usage(userId, utcDay(endedAt)),
    keys.usageCounted(userId, count.jobId),
    fieldOf(count.keyId, count.model, count.outcome),
    tokens(count.usage.promptTokens),
    tokens(count.usage.completionTokens),
    endOfUtcDay(endedAt) + retentionDays * DAY_S,
    USAGE_COUNTED_TTL_S,
  );
  const day = dayStartMs(endedAt);
  await redis
    .pipeline()
    .zadd(keys.usageUsers, 'GT', day, userId)
    .zremrangebyscore(keys.usageUsers, '-inf', `(${day - retentionDays * DAY_S * 1000}`)
    .exec()
    .then((results) => {
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    });
  return counted === 1;
}

/** What {@link recordUsageEventually} logs through: a pino logger has these. */
export interface UsageLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RecordUsageOptions {
  /** USAGE_RETENTION_DAYS. */
  retentionDays: number;
  log: UsageLog;
  /** Called for every failed try that will be tried again (a metric). */
  onRetry?: () => void;
  /** Wait before the first retry; doubles per retry up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** How a count ended: taken (now, or before), or given up because the connection closed for good. */
export type RecordOutcome = 'counted' | 'counted_before' | 'connection_closed';

/**
 * {@link recordUsage}, retried with backoff until Redis takes it, like the quota settlement
 * (apps/worker/src/quota-settler.ts): a count lost to a Redis hiccup would be usage nobody sees.
 * Retries are safe: a try whose reply was lost after Redis applied it finds its marker the next
 * time. It gives up only when the connection was closed for good (the process is stopping): the
 * count is then logged (`usage_record_gave_up`, with its numbers) for the operator. Never rejects.
 */
export function recordUsageEventually(
  redis: Redis,
  keys: Pick<Keys, 'usage' | 'usageCounted' | 'usageUsers'>,
  count: UsageCount,
  { retentionDays, log, onRetry, firstDelayMs = 100, maxDelayMs = 5000 }: RecordUsageOptions,
): Promise<RecordOutcome> {
  return (async () => {
    const r = await untilRedisTakes(() => recordUsage(redis, keys, count, retentionDays), {
      redis,
      firstDelayMs,
      maxDelayMs,
      onRetry: (attempt, err) => {
        if (attempt === 1)
          log.warn({ job_id: count.jobId, err: err.message }, 'usage_record_failed_retrying');
        onRetry?.();
      },
    });
    if (r.end !== 'done') {
      log.error({ ...describe(count), attempts: r.attempts, err: r.err.message }, 'usage_record_gave_up');
      return 'connection_closed';
    }
    if (r.attempts > 1) log.info({ job_id: count.jobId, attempts: r.attempts }, 'usage_recorded_after_retry');
    return r.value ? 'counted' : 'counted_before';
  })();
}

/** A count as log fields: enough to add it by hand. */
const describe = (c: UsageCount) => ({
  job_id: c.jobId,
  user_id: c.userId,
  key_id: c.keyId,
  model: c.model,
  outcome: c.outcome,
  prompt_tokens: c.usage.promptTokens,
  completion_tokens: c.usage.completionTokens,
  day: utcDay(c.endedAt),
});

/**
 * The ledger entries of `userIds` on `days` (`YYYYMMDD`), in no particular order. One pipeline per
 * user: a user's days share a slot on a Cluster, different users may not.
 */
export async function readLedger(
  redis: Redis,
  keys: Pick<Keys, 'usage'>,
  userIds: readonly string[],
  days: readonly string[],
): Promise<LedgerEntry[]> {
  const perUser = await Promise.all(
    userIds.map(async (userId) => {
      const pipe = redis.pipeline();
      for (const day of days) pipe.hgetall(keys.usage(userId, day));
      const replies = (await pipe.exec()) ?? [];
      return replies.flatMap(([err, hash], i) => {
        if (err) throw err;
        return entriesOf(userId, days[i]!, hash as Record<string, string>);
      });
    }),
  );
  return perUser.flat();
}

const OUTCOMES: ReadonlySet<string> = new Set(USAGE_OUTCOMES);

/** One day's hash → its entries (fields or values of an unknown shape, from a later release, are skipped). */
function entriesOf(userId: string, day: string, hash: Record<string, string>): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const [field, value] of Object.entries(hash)) {
    const parts = field.split('|');
    const counters = /^(\d+) (\d+) (\d+)$/.exec(value);
    if (parts.length !== 3 || !counters) continue;
    const [key, model, outcome] = parts as [string, string, string];
    if (!OUTCOMES.has(outcome)) continue;
    entries.push({
      day,
      userId,
      keyId: key === '' ? null : unescapeField(key),
      model: unescapeField(model),
      outcome: outcome as UsageOutcome,
      promptTokens: Number(counters[1]),
      completionTokens: Number(counters[2]),
      jobs: Number(counters[3]),
    });
  }
  return entries;
}

/** Users with usage on or after the UTC day that starts at `sinceMs` (keys.usageUsers). */
export async function usersWithUsage(
  redis: Redis,
  keys: Pick<Keys, 'usageUsers'>,
  sinceMs: number,
): Promise<string[]> {
  return redis.zrangebyscore(keys.usageUsers, dayStartMs(sinceMs), '+inf');
}

/** Unref'd: pending retries never keep a stopping process alive. */
