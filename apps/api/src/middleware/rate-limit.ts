import { randomBytes } from 'node:crypto';
import { rateLimit as decide, type Keys } from '@llmgw/redis';
import type { MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import { limitsOf, rateKeyOf } from '../auth/limits-of.ts';
import type { Tiers } from '../auth/tiers.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

export interface RateLimitOptions {
  redis: Redis;
  keys: Keys;
  tiers: Tiers;
  /** Window of `requests_per_min` (60 000; tests shorten it). */
  windowMs?: number;
  onReject?: (tier: string) => void;
}

const windowLabel = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

/**
 * Requests per window per user, one atomic Lua decision against Redis's clock, so the limit is
 * exact across any number of api replicas. Every response carries X-RateLimit-Limit / -Remaining
 * / -Reset; a refusal is 429 `rate_limit_exceeded` with Retry-After rounded up to the second at
 * which a request would pass. Runs after authentication and before body validation, so a flood
 * of malformed requests still counts against its sender.
 */
export function rateLimit({
  redis,
  keys,
  tiers,
  windowMs = 60_000,
  onReject,
}: RateLimitOptions): MiddlewareHandler<AppEnv> {
  return async function rateLimitMiddleware(c, next) {
    const principal = c.get('principal');
    if (!principal) return next();
    // The tier's limit per user, or the key's own (counted for the key alone).
    const { requestsPerMin } = limitsOf(tiers, principal);
    let d: Awaited<ReturnType<typeof decide>>;
    try {
      const member = `${c.get('requestId')}:${randomBytes(4).toString('hex')}`;
      d = await decide(redis, rateKeyOf(keys, requestsPerMin), requestsPerMin.limit, windowMs, member);
    } catch {
      throw new ApiError('service_unavailable', 'rate limiter unavailable; retry shortly', {
        headers: { 'Retry-After': '1' },
      });
    }
    const resetS = Math.ceil(d.resetMs / 1000);
    c.header('X-RateLimit-Limit', String(d.limit));
    c.header('X-RateLimit-Remaining', String(d.remaining));
    c.header('X-RateLimit-Reset', String(resetS));
    if (!d.allowed) {
      onReject?.(principal.tier);
      throw new ApiError(
        'rate_limit_exceeded',
        `rate limit of ${d.limit} requests per ${windowLabel(windowMs)} exceeded`,
        {
          details: { limit: d.limit, window: windowLabel(windowMs) },
          headers: { 'Retry-After': String(Math.max(1, resetS)) },
        },
      );
    }
    return next();
  };
}
