import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors/index.ts';

export interface LoginThrottleOptions {
  /** Failed attempts allowed per address per window; the next attempt is refused. */
  maxFailures?: number;
  windowMs?: number;
}

/**
 * Failed ADMIN_TOKEN attempts per client address, a fixed-window counter in Redis shared by every
 * replica: without it the token could be guessed at line rate. One counter for both ways of
 * presenting the token — the `/admin/login` form and `Authorization: Bearer` on any other /admin
 * route (issue 24 §9: bearer guesses went unthrottled at ~500/s while the form stopped at 5) — so
 * a guesser gains nothing by switching between them. Only failures count: an operator or a script
 * that uses the right token often is never throttled.
 */
export class LoginThrottle {
  private readonly maxFailures: number;
  private readonly windowMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    { maxFailures = 5, windowMs = 60_000 }: LoginThrottleOptions = {},
  ) {
    this.maxFailures = maxFailures;
    this.windowMs = windowMs;
  }

  /** Seconds until `address` may try again; undefined while it is under the limit. */
  async blockedFor(address: string): Promise<number | undefined> {
    const key = this.keys.adminLoginFailures(address);
    const [count, pttl] = replies(await this.redis.multi().get(key).pttl(key).exec()) as [
      string | null,
      number,
    ];
    if (Number(count ?? 0) < this.maxFailures) return undefined;
    return Math.max(1, Math.ceil(pttl / 1000));
  }

  /** Counts a failed attempt; the window starts at the first failure. */
  async failed(address: string): Promise<void> {
    const key = this.keys.adminLoginFailures(address);
    replies(await this.redis.multi().set(key, 0, 'PX', this.windowMs, 'NX').incr(key).exec());
  }
}

/**
 * The refusal of a throttled address, whichever way it presented a token: the same 429 body and
 * Retry-After from the login form's answer to a script and from the Bearer guard.
 */
export function throttledError(retryAfterS: number): ApiError {
  return new ApiError('rate_limit_exceeded', `Too many failed attempts; try again in ${retryAfterS} s.`, {
    headers: { 'Retry-After': String(retryAfterS) },
  });
}

/** Without its counter the throttle cannot hold: refuse rather than allow unlimited guesses. */
export function throttleDown(): never {
  throw new ApiError('service_unavailable', 'admin authentication is unavailable right now; retry shortly', {
    headers: { 'Retry-After': '1' },
  });
}

/** A MULTI's replies; throws the first command error (ioredis resolves them as `[err, reply]`). */
function replies(rows: [Error | null, unknown][] | null): unknown[] {
  if (!rows) throw new Error('transaction aborted');
  return rows.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}
