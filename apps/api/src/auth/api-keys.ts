import { createHash, randomBytes } from 'node:crypto';
import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/** A key's own limits: each replaces its tier's, counted for the key alone (docs/operations.md). */
export const KeyLimits = z.strictObject({
  requests_per_min: z.number().int().positive().optional(),
  tokens_per_min: z.number().int().positive().optional(),
  tokens_per_day: z.number().int().positive().optional(),
});
export type KeyLimits = z.infer<typeof KeyLimits>;

/**
 * What a key may do besides its user and tier, as the admin API and the CLI set it (snake_case).
 * Every field is optional: a key without them works as keys always have.
 */
export const KeyPolicy = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  /** When the key stops working (401 `key_expired`): epoch ms, or an ISO 8601 date-time. */
  expires_at: z
    .union([z.number().int().positive(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))])
    .optional(),
  /** The models it may use; absent: every model. */
  models: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
  limits: KeyLimits.optional(),
  /** Tokens it may use per UTC calendar month (429 `budget_exceeded`, final until the month ends). */
  monthly_budget: z.number().int().positive().optional(),
  /** Free-form labels (owner, team, ticket): at most 16, short. */
  metadata: z.record(z.string().min(1).max(64), z.string().max(256)).optional(),
});
export type KeyPolicy = z.infer<typeof KeyPolicy>;

export interface ApiKeyRecord {
  /** Public id (`key_…`), safe to show and log; the key itself is shown once, at creation. */
  id: string;
  userId: string;
  tier: string;
  createdAt: number;
  revoked: boolean;
  name?: string;
  /** Epoch ms; past it the key gets 401 `key_expired`. */
  expiresAt?: number;
  models?: string[];
  limits?: KeyLimits;
  monthlyBudget?: number;
  metadata?: Record<string, string>;
  /** Epoch ms of its last authenticated request, written at most once a minute. */
  lastUsedAt?: number;
  /** A rotated key's former secret: valid until its `expiresAt` (the rotation's grace). */
  superseded?: boolean;
}

export interface CreatedKey extends ApiKeyRecord {
  /** The secret, returned only by create() and rotate(). */
  key: string;
}

/** An API key as the admin API answers it: snake_case, like every JSON key the gateway serves. */
export interface ApiKeyBody {
  id: string;
  user_id: string;
  tier: string;
  created_at: number;
  revoked: boolean;
  expired: boolean;
  name?: string;
  expires_at?: number;
  models?: string[];
  limits?: KeyLimits;
  monthly_budget?: number;
  metadata?: Record<string, string>;
  last_used_at?: number;
  /** Only in the answer to a creation or a rotation. */
  key?: string;
}

export const isExpired = (r: Pick<ApiKeyRecord, 'expiresAt'>, now = Date.now()): boolean =>
  r.expiresAt !== undefined && now >= r.expiresAt;

export function apiKeyBody(r: ApiKeyRecord | CreatedKey): ApiKeyBody {
  return {
    id: r.id,
    user_id: r.userId,
    tier: r.tier,
    created_at: r.createdAt,
    revoked: r.revoked,
    expired: isExpired(r),
    ...(r.name !== undefined && { name: r.name }),
    ...(r.expiresAt !== undefined && { expires_at: r.expiresAt }),
    ...(r.models !== undefined && { models: r.models }),
    ...(r.limits !== undefined && { limits: r.limits }),
    ...(r.monthlyBudget !== undefined && { monthly_budget: r.monthlyBudget }),
    ...(r.metadata !== undefined && { metadata: r.metadata }),
    ...(r.lastUsedAt !== undefined && { last_used_at: r.lastUsedAt }),
    ...('key' in r && { key: r.key }),
  };
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const KEY_PREFIX = 'llmgw_';
const LAST_USED_EVERY_MS = 60_000;

/**
 * API keys in Redis, stored only as SHA-256 hashes (a stolen Redis dump reveals no key).
 * Lookups are cached per process for `cacheMs`, so a revocation takes effect on every replica
 * within that time. A key's public id stays the same across rotations (its usage stays one
 * history); `P:apikeyid:<id>` points at its current secret's hash.
 */
export class ApiKeyStore {
  private readonly cache = new Map<string, { record: ApiKeyRecord | undefined; at: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly cacheMs = 500,
  ) {}

  /** Whether `s` has the form of a key (a secret) rather than of a public id. */
  static isSecret(s: string): boolean {
    return s.startsWith(KEY_PREFIX);
  }

  async create(userId: string, tier: string, policy: KeyPolicy = {}): Promise<CreatedKey> {
    const secret = newSecret();
    const hash = sha256(secret);
    const record: ApiKeyRecord = {
      id: `key_${hash.slice(0, 12)}`,
      userId,
      tier,
      createdAt: Date.now(),
      revoked: false,
      ...fromPolicy(policy),
    };
    await this.redis
      .multi()
      .hset(this.keys.apiKey(hash), toHash(record))
      .sadd(this.keys.apiKeys, hash)
      .set(this.keys.apiKeyId(record.id), hash)
      .exec();
    return { ...record, key: secret };
  }

  /** The record for a presented key, undefined if unknown (revoked and expired keys are returned, flagged). */
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

  /**
   * Records that a key was used, at most once a minute per key (`last_used_at`): one HSET, not
   * awaited, never on the request's path; a failure only leaves the time older.
   */
  markUsed(secret: string, record: ApiKeyRecord, now = Date.now()): void {
    if (record.lastUsedAt !== undefined && now - record.lastUsedAt < LAST_USED_EVERY_MS) return;
    record.lastUsedAt = now;
    this.redis.hset(this.keys.apiKey(sha256(secret)), 'last_used_at', String(now)).catch(() => {});
  }

  /** Every key's current record (a rotated key once, under its new secret), oldest first. */
  async list(): Promise<ApiKeyRecord[]> {
    return (await this.all()).filter((r) => !r.record.superseded).map((r) => r.record);
  }

  /** One key by public id (its current record), undefined if none. */
  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const hash = await this.hashOf(id);
    return hash ? toRecord(await this.redis.hgetall(this.keys.apiKey(hash))) : undefined;
  }

  /**
   * Revokes by public id or by the key itself — every secret of the key, a rotated one's former
   * secret too: the revoked record (its id and user, for the caller to show instead of what it
   * was given, which may be the secret); undefined when no such key.
   */
  async revoke(idOrKey: string): Promise<ApiKeyRecord | undefined> {
    const hash = await this.hashOf(idOrKey);
    const record = hash && toRecord(await this.redis.hgetall(this.keys.apiKey(hash)));
    if (!hash || !record) return undefined;
    const hashes = (await this.all()).filter((r) => r.record.id === record.id).map((r) => r.hash);
    const tx = this.redis.multi();
    for (const h of new Set([hash, ...hashes])) {
      tx.hset(this.keys.apiKey(h), 'revoked', '1');
      this.cache.delete(h);
    }
    await tx.exec();
    return { ...record, revoked: true };
  }

  /**
   * A new secret for the key, same id, limits and history; the old secret keeps working for
   * `graceMs` (0: it stops at once), so clients can be moved without downtime. Undefined when
   * there is no such key; a revoked or expired key cannot be rotated (throws).
   */
  async rotate(id: string, graceMs: number, now = Date.now()): Promise<CreatedKey | undefined> {
    const oldHash = await this.hashOf(id);
    const old = oldHash && toRecord(await this.redis.hgetall(this.keys.apiKey(oldHash)));
    if (!oldHash || !old) return undefined;
    if (old.revoked) throw new KeyStateError('the key is revoked');
    if (isExpired(old, now)) throw new KeyStateError('the key has expired');
    const secret = newSecret();
    const hash = sha256(secret);
    const record: ApiKeyRecord = { ...old, lastUsedAt: undefined, superseded: false };
    const graceEnd = now + graceMs;
    const oldEnds = old.expiresAt === undefined ? graceEnd : Math.min(old.expiresAt, graceEnd);
    await this.redis
      .multi()
      .hset(this.keys.apiKey(hash), toHash(record))
      .sadd(this.keys.apiKeys, hash)
      .set(this.keys.apiKeyId(record.id), hash)
      .hset(this.keys.apiKey(oldHash), { expires_at: String(oldEnds), superseded: '1' })
      .exec();
    this.cache.delete(oldHash);
    return { ...record, key: secret };
  }

  /** The current secret's hash of a public id (or of the key itself). */
  private async hashOf(idOrKey: string): Promise<string | undefined> {
    if (ApiKeyStore.isSecret(idOrKey)) return sha256(idOrKey);
    const indexed = await this.redis.get(this.keys.apiKeyId(idOrKey));
    if (indexed) return indexed;
    // Keys created before the id index: the id is the first 12 hex digits of the hash.
    const hashes = await this.redis.smembers(this.keys.apiKeys);
    return hashes.find((h) => `key_${h.slice(0, 12)}` === idOrKey);
  }

  private async all(): Promise<{ hash: string; record: ApiKeyRecord }[]> {
    const hashes = await this.redis.smembers(this.keys.apiKeys);
    if (hashes.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const h of hashes) pipe.hgetall(this.keys.apiKey(h));
    const rows = (await pipe.exec()) ?? [];
    return rows
      .map(([, v], i) => ({ hash: hashes[i]!, record: toRecord(v as Record<string, string>) }))
      .filter((r): r is { hash: string; record: ApiKeyRecord } => r.record !== undefined)
      .sort((a, b) => a.record.createdAt - b.record.createdAt);
  }
}

/** A rotation the key's state does not allow (revoked, expired): the admin API's 409. */
export class KeyStateError extends Error {
  override name = 'KeyStateError';
}

const newSecret = () => `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;

function fromPolicy(p: KeyPolicy): Partial<ApiKeyRecord> {
  return {
    ...(p.name !== undefined && { name: p.name }),
    ...(p.expires_at !== undefined && { expiresAt: p.expires_at }),
    ...(p.models !== undefined && { models: p.models }),
    ...(p.limits !== undefined && Object.keys(p.limits).length > 0 && { limits: p.limits }),
    ...(p.monthly_budget !== undefined && { monthlyBudget: p.monthly_budget }),
    ...(p.metadata !== undefined && { metadata: p.metadata }),
  };
}

function toHash(r: ApiKeyRecord): Record<string, string> {
  return {
    id: r.id,
    user_id: r.userId,
    tier: r.tier,
    created_at: String(r.createdAt),
    revoked: r.revoked ? '1' : '0',
    ...(r.name !== undefined && { name: r.name }),
    ...(r.expiresAt !== undefined && { expires_at: String(r.expiresAt) }),
    ...(r.models !== undefined && { models: JSON.stringify(r.models) }),
    ...(r.limits !== undefined && { limits: JSON.stringify(r.limits) }),
    ...(r.monthlyBudget !== undefined && { monthly_budget: String(r.monthlyBudget) }),
    ...(r.metadata !== undefined && { metadata: JSON.stringify(r.metadata) }),
  };
}

/** A field written by this code as JSON; anything else (a hand edit) reads as absent. */
function json<T>(raw: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (raw === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const num = (raw: string | undefined): number | undefined => {
  const n = raw === undefined ? Number.NaN : Number(raw);
  return Number.isFinite(n) ? n : undefined;
};

function toRecord(h: Record<string, string> | null | undefined): ApiKeyRecord | undefined {
  if (!h?.user_id) return undefined;
  const record: ApiKeyRecord = {
    id: h.id ?? '',
    userId: h.user_id,
    tier: h.tier ?? 'free',
    createdAt: Number(h.created_at ?? 0),
    revoked: h.revoked === '1',
  };
  const expiresAt = num(h.expires_at);
  const models = json(h.models, z.array(z.string()));
  const limits = json(h.limits, KeyLimits);
  const monthlyBudget = num(h.monthly_budget);
  const metadata = json(h.metadata, z.record(z.string(), z.string()));
  const lastUsedAt = num(h.last_used_at);
  return {
    ...record,
    ...(h.name !== undefined && { name: h.name }),
    ...(expiresAt !== undefined && { expiresAt }),
    ...(models !== undefined && { models }),
    ...(limits !== undefined && { limits }),
    ...(monthlyBudget !== undefined && { monthlyBudget }),
    ...(metadata !== undefined && { metadata }),
    ...(lastUsedAt !== undefined && { lastUsedAt }),
    ...(h.superseded === '1' && { superseded: true }),
  };
}
