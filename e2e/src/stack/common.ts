/**
 * What the two stack builders share — the in-process one (in-process.ts: tests) and the spawned
 * one (spawned.ts: tests of real processes, and `pnpm bench`): the key prefix a stack lives
 * under, the environment every one of its services starts with, its API keys, and its cleanup.
 */
import { randomUUID } from 'node:crypto';
import { ApiKeyStore } from '@llmgw/api';
import { deleteKeysWithPrefix } from '@llmgw/devkit';
import { createKeys, createRedis, type Keys, quitQuietly, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';

/** `test`: a test's stack; `bench`: a benchmark run's (both may share a Redis with others). */
export type StackKind = 'test' | 'bench';

/** A fresh key prefix: `test-<uuid>` (STYLE.md 11), or `bench-<8 hex>`. */
export const stackPrefix = (kind: StackKind = 'test'): string =>
  kind === 'test' ? `test-${randomUUID()}` : `bench-${randomUUID().slice(0, 8)}`;

/** The variables every service of a stack starts with: one Redis, one prefix. */
export const stackEnv = (redisUrl: string, prefix: string): { REDIS_URL: string; KEY_PREFIX: string } => ({
  REDIS_URL: redisUrl,
  KEY_PREFIX: prefix,
});

export interface StackApiKey {
  key: string;
  userId: string;
  /** The `authorization` header that presents the key. */
  headers: Record<string, string>;
}

/**
 * A new API key of `tier` for `userId` under `prefix` (or a stack's `keys`, e.g. a Cluster's),
 * through the api's own key store.
 */
export async function createApiKey(
  redis: Redis,
  prefix: string | Keys,
  userId: string,
  tier = 'enterprise',
): Promise<StackApiKey> {
  const keys = typeof prefix === 'string' ? createKeys(prefix) : prefix;
  const { key } = await new ApiKeyStore(redis, keys).create(userId, tier);
  return { key, userId, headers: { authorization: `Bearer ${key}` } };
}

/** {@link createApiKey} on a connection of its own, for a caller that holds none. */
export async function createApiKeyAt(
  redisUrl: string,
  prefix: string,
  userId: string,
  tier?: string,
): Promise<StackApiKey> {
  const redis = createRedis(redisUrl, 'command', `${prefix}:keys`);
  redis.on('error', () => {});
  try {
    await waitReady(redis);
    return await createApiKey(redis, prefix, userId, tier);
  } finally {
    await quitQuietly(redis);
  }
}

/**
 * The last step of every stack's close(), once its services stopped writing: every key under
 * `<prefix>:` (queues, registrations, limits, API keys), by SCAN, never KEYS — the Redis is shared.
 */
export const removeStackKeys = (redisUrl: string, prefix: string): Promise<number> =>
  deleteKeysWithPrefix(redisUrl, prefix);
