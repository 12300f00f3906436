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

export async function reserveQuota(
  redis: Redis,
  key: string,
  amount: number,
  limit: number,
  now = Date.now(),
) {
  const [reserved, used] = await withScripts(redis).quotaReserve(key, amount, limit, endOfUtcDay(now));
  return { reserved: reserved === 1, used } satisfies QuotaReservation;
}

/** Moves a reservation to the real usage: `delta` = used − reserved. */
export async function settleQuota(redis: Redis, key: string, delta: number): Promise<number> {
  if (delta === 0) return Number((await redis.get(key)) ?? 0);
  return withScripts(redis).quotaSettle(key, delta);
}
