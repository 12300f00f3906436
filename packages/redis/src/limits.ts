import type { Redis } from 'ioredis';
import { withScripts } from './scripts.ts';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** ms until the oldest request in the window leaves it (the earliest a refused one would pass). */
  resetMs: number;
}

/** One atomic sliding-window decision (rate-limit-1.lua). */
export async function rateLimit(
  redis: Redis,
  key: string,
  limit: number,
  windowMs: number,
  member: string,
): Promise<RateDecision> {
  const [allowed, remaining, resetMs] = await withScripts(redis).rateLimit(key, limit, windowMs, member);
  return { allowed: allowed === 1, limit, remaining, resetMs };
}

/** End of the current UTC day, unix seconds: when a daily counter expires. */
export function endOfUtcDay(now = Date.now()): number {
  const d = new Date(now);
  return Math.floor(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) / 1000);
}

/** `YYYYMMDD` of the UTC day, for daily keys. */
export function utcDay(now = Date.now()): string {
  return new Date(now).toISOString().slice(0, 10).replaceAll('-', '');
}

export interface QuotaReservation {
  reserved: boolean;
  /** Tokens counted today after the call. */
  used: number;
}

/** Reserves against a counter that expires at `expireAt` (unix s; default: the end of the UTC day). */
export async function reserveQuota(
  redis: Redis,
  key: string,
  amount: number,
  limit: number,
  now = Date.now(),
  expireAt = endOfUtcDay(now),
) {
  const [reserved, used] = await withScripts(redis).quotaReserve(key, amount, limit, expireAt);
  return { reserved: reserved === 1, used } satisfies QuotaReservation;
}

/** Moves a reservation to the real usage: `delta` = used − reserved. */
export async function settleQuota(redis: Redis, key: string, delta: number): Promise<number> {
  if (delta === 0) return Number((await redis.get(key)) ?? 0);
  return withScripts(redis).quotaSettle(key, delta);
}

export interface BucketDecision {
  taken: boolean;
  /** Tokens left in the bucket after the call. */
  remaining: number;
  /** ms until this request would pass (0 when taken). */
  waitMs: number;
  /** ms until the bucket is full again. */
  fullMs: number;
}

/** Takes `amount` tokens from a tokens-per-minute bucket, all or nothing (token-bucket-take-1.lua). */
export async function takeTokens(
  redis: Redis,
  key: string,
  amount: number,
  limit: number,
  windowMs = 60_000,
): Promise<BucketDecision> {
  const [taken, remaining, waitMs, fullMs] = await withScripts(redis).tokenBucketTake(
    key,
    amount,
    limit,
    windowMs,
  );
  return { taken: taken === 1, remaining, waitMs, fullMs };
}

/** `YYYYMM` of the UTC month, for monthly keys. */
export function utcMonth(now = Date.now()): string {
  return new Date(now).toISOString().slice(0, 7).replace('-', '');
}

/** End of the current UTC month, unix seconds: when a monthly counter expires. */
export function endOfUtcMonth(now = Date.now()): number {
  const d = new Date(now);
  return Math.floor(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000);
}

/**
 * A reservation a job holds until it ends, besides the daily quota: a `counter` (a key's monthly
 * budget, a per-key daily quota: quota-reserve-1.lua) or a `bucket` (tokens per minute).
 */
export interface Hold {
  kind: 'counter' | 'bucket';
  key: string;
  reserved: number;
}

/** Moves a hold to the real usage: `delta` = used − reserved (bucket: gives tokens back). */
export async function settleHold(
  redis: Redis,
  hold: Pick<Hold, 'kind' | 'key'>,
  delta: number,
): Promise<void> {
  if (delta === 0) return;
  if (hold.kind === 'bucket') await withScripts(redis).tokenBucketSettle(hold.key, delta);
  else await withScripts(redis).quotaSettle(hold.key, delta);
}
