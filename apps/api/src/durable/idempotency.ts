import { createHash } from 'node:crypto';
import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors/index.ts';

/** An Idempotency-Key holds its job for this long (Stripe's window). */
const WINDOW_S = 24 * 3600;
const MAX_KEY_LENGTH = 255;

/**
 * `Idempotency-Key` (IETF httpapi draft, Stripe's convention): the same key from the same user
 * within 24 h attaches to the job the first request started and never starts a second; the same
 * key with another request body is a 422 `idempotency_key_reused`. Stored per user
 * (keys.idempotency: `<jobId> <digest of method, path and body>`), the key itself hashed.
 */
export class Idempotency {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Pick<Keys, 'idempotency'>,
  ) {}

  /** The header's value, checked; undefined when the request has none. */
  static keyOf(header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    if (header.length === 0 || header.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(header)) {
      throw new ApiError(
        'invalid_request',
        `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} visible ASCII characters`,
        { param: 'Idempotency-Key' },
      );
    }
    return header;
  }

  /**
   * The request's digest: method, path and the body in a canonical form (object keys sorted at
   * every depth), so that a retry whose client serialized the same body with its keys in another
   * order (a tool's JSON schema rebuilt from a dict, say) is the same request.
   */
  static digest(method: string, path: string, body: unknown): string {
    return createHash('sha256')
      .update(`${method} ${path}\n${canonicalJson(body)}`)
      .digest('hex');
  }

  private redisKey(userId: string, key: string): string {
    return this.keys.idempotency(userId, createHash('sha256').update(key).digest('hex'));
  }

  /** The job this key already started, or undefined; 422 if it came with another body. */
  async existing(userId: string, key: string, digest: string): Promise<string | undefined> {
    const value = await this.redis.get(this.redisKey(userId, key));
    return value === null ? undefined : jobOf(value, digest);
  }

  /**
   * Claims the key for `jobId` (before it is enqueued). Returns undefined when claimed, or the
   * job of a concurrent request that claimed it first.
   */
  async claim(userId: string, key: string, digest: string, jobId: string): Promise<string | undefined> {
    const k = this.redisKey(userId, key);
    const set = await this.redis.set(k, `${jobId} ${digest}`, 'EX', WINDOW_S, 'NX');
    if (set === 'OK') return undefined;
    const value = await this.redis.get(k);
    return value === null ? undefined : jobOf(value, digest);
  }

  /** The claimed job never reached the queue: the key may be used again. */
  async release(userId: string, key: string, jobId: string): Promise<void> {
    const k = this.redisKey(userId, key);
    const value = await this.redis.get(k);
    if (value?.startsWith(`${jobId} `)) await this.redis.del(k);
  }
}

function jobOf(value: string, digest: string): string {
  const [jobId = '', stored] = value.split(' ');
  if (stored !== digest) {
    throw new ApiError(
      'idempotency_key_reused',
      'this Idempotency-Key was used with a different request (body or endpoint); use a new key for a new request',
    );
  }
  return jobId;
}

/** JSON with every object's keys in sorted order; arrays keep theirs (order is meaning there). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
