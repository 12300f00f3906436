import type { Redis } from 'ioredis';

export interface UntilTakenOptions {
  /** The connection the operation uses: once it is closed for good (`end`), trying stops. */
  redis: Redis;
  /** Wait before the first retry; doubles per retry up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Epoch ms: a retry that would come at or after it is not made (its counter is gone by then). */
  giveUpAt?: number;
  /** Before each retry's wait: the try that failed (1 for the first) and why. */
  onRetry?(attempt: number, err: Error): void;
}

export type UntilTaken<T> =
  | { end: 'done'; value: T; attempts: number }
  | { end: 'connection_closed' | 'gave_up'; attempts: number; err: Error };

/**
 * Runs `op` until Redis takes it, with backoff (100 ms doubling to 5 s by default): what a write
 * that must land once its job has ended needs — a quota settlement, a usage count, a batch
 * request's result. It stops only when retrying is pointless: the connection was closed for good
 * (shutdown), or `giveUpAt` is reached. The waits are unref'd: pending retries never keep a
 * stopping process alive.
 */
export async function untilRedisTakes<T>(
  op: () => Promise<T>,
  opts: UntilTakenOptions,
): Promise<UntilTaken<T>> {
  const { redis, maxDelayMs = 5000, giveUpAt, onRetry } = opts;
  let delay = opts.firstDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return { end: 'done', value: await op(), attempts: attempt };
    } catch (e) {
      const err = e as Error;
      if (redis.status === 'end') return { end: 'connection_closed', attempts: attempt, err };
      if (giveUpAt !== undefined && Date.now() + delay >= giveUpAt)
        return { end: 'gave_up', attempts: attempt, err };
      onRetry?.(attempt, err);
      await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }
}
