import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';

export interface LoginThrottleOptions {
  /** Failed attempts allowed per address per window; the next attempt is refused. */
  maxFailures?: number;
  windowMs?: number;
}

/**
 * Failed `/admin/login` attempts per client address, a fixed-window counter in Redis shared by
 * every replica: without it ADMIN_TOKEN could be guessed at line rate. Only failures count — an
 * operator who logs in often is never throttled.
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

/** A MULTI's replies; throws the first command error (ioredis resolves them as `[err, reply]`). */
function replies(rows: [Error | null, unknown][] | null): unknown[] {
  if (!rows) throw new Error('transaction aborted');
  return rows.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}
