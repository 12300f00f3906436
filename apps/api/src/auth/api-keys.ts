import { createHash, randomBytes } from 'node:crypto';
import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';

export interface ApiKeyRecord {
  /** Public id (`key_…`), safe to show and log; the key itself is shown once, at creation. */
  id: string;
  userId: string;
  tier: string;
  createdAt: number;
  revoked: boolean;
}

export interface CreatedKey extends ApiKeyRecord {
  /** The secret, returned only by create(). */
  key: string;
}

/** An API key as the admin API answers it: snake_case, like every JSON key the gateway serves. */
export interface ApiKeyBody {
  id: string;
  user_id: string;
  tier: string;
  created_at: number;
  revoked: boolean;
  /** Only in the answer to a creation. */
  key?: string;
}

export function apiKeyBody(r: ApiKeyRecord | CreatedKey): ApiKeyBody {
  return {
    id: r.id,
    user_id: r.userId,
    tier: r.tier,
    created_at: r.createdAt,
    revoked: r.revoked,
    ...('key' in r && { key: r.key }),
  };
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const KEY_PREFIX = 'llmgw_';

/**
 * API keys in Redis, stored only as SHA-256 hashes (a stolen Redis dump reveals no key).
 * Lookups are cached per process for `cacheMs`, so a revocation takes effect on every replica
 * within that time.
 */
export class ApiKeyStore {
  private readonly cache = new Map<string, { record: ApiKeyRecord | undefined; at: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly cacheMs = 500,
  ) {}

  async create(userId: string, tier: string): Promise<CreatedKey> {
    const secret = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
    const hash = sha256(secret);
    const record: ApiKeyRecord = {
      id: `key_${hash.slice(0, 12)}`,
      userId,
      tier,
      createdAt: Date.now(),
      revoked: false,
    };
    await this.redis
      .multi()
      .hset(this.keys.apiKey(hash), {
        id: record.id,
        user_id: userId,
        tier,
        created_at: String(record.createdAt),
        revoked: '0',
      })
      .sadd(this.keys.apiKeys, hash)
      .exec();
    return { ...record, key: secret };
  }

  /** The record for a presented key, undefined if unknown (revoked keys are returned, flagged). */
  async lookup(secret: string): Promise<ApiKeyRecord | undefined> {
    const hash = sha256(secret);
    const hit = this.cache.get(hash);
    const now = Date.now();
    if (hit && now - hit.at < this.cacheMs) return hit.record;
    const record = toRecord(await this.redis.hgetall(this.keys.apiKey(hash)));
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { record, at: now });
    return record;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const hashes = await this.redis.smembers(this.keys.apiKeys);
    if (hashes.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const h of hashes) pipe.hgetall(this.keys.apiKey(h));
    const rows = (await pipe.exec()) ?? [];
    return rows
      .map(([, v]) => toRecord(v as Record<string, string>))
      .filter((r): r is ApiKeyRecord => r !== undefined)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Whether `s` has the form of a key (a secret) rather than of a public id. */
  static isSecret(s: string): boolean {
    return s.startsWith(KEY_PREFIX);
  }

  /**
   * Revokes by public id or by the key itself: the revoked record (its id and user, for the
   * caller to show instead of what it was given, which may be the secret); undefined when no
   * such key.
   */
  async revoke(idOrKey: string): Promise<ApiKeyRecord | undefined> {
    let hash: string | undefined;
    if (ApiKeyStore.isSecret(idOrKey)) hash = sha256(idOrKey);
    else {
      const hashes = await this.redis.smembers(this.keys.apiKeys);
      hash = hashes.find((h) => `key_${h.slice(0, 12)}` === idOrKey);
    }
    const record = hash && toRecord(await this.redis.hgetall(this.keys.apiKey(hash)));
    if (!hash || !record) return undefined;
    await this.redis.hset(this.keys.apiKey(hash), 'revoked', '1');
    this.cache.delete(hash);
    return { ...record, revoked: true };
  }
}

function toRecord(h: Record<string, string> | null | undefined): ApiKeyRecord | undefined {
  if (!h?.user_id) return undefined;
  return {
    id: h.id ?? '',
    userId: h.user_id,
    tier: h.tier ?? 'free',
    createdAt: Number(h.created_at ?? 0),
    revoked: h.revoked === '1',
  };
}
