import { randomUUID } from 'node:crypto';
import { LogCapture } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createKeys, createRedis, type Keys, quitQuietly, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { composeApi } from '../compose.ts';
import { parseApiEnv } from '../env.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';

export interface TestRedis {
  /** A `command` connection, as the api's request path uses. */
  redis: Redis;
  /** `test-<uuid>`: this test's keys and channels, and no one else's. */
  prefix: string;
  keys: Keys;
  /** Every key under the prefix. */
  keysInUse(): Promise<string[]>;
  /** Deletes `${prefix}:*` and closes the connection. */
  close(): Promise<void>;
}

/** A connection to the shared test Redis under a fresh key prefix. */
export async function testRedis(): Promise<TestRedis> {
  const prefix = `test-${randomUUID()}`;
  const redis = createRedis(inject('redisUrl'), 'command', `${prefix}:cmd`);
  await waitReady(redis);
  // SCAN, not KEYS: the Redis is shared with every other test running.
  const keysInUse = async () => {
    const found: string[] = [];
    for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 })) found.push(...batch);
    return found;
  };
  return {
    redis,
    prefix,
    keys: createKeys(prefix),
    keysInUse,
    async close() {
      const left = await keysInUse();
      if (left.length > 0) await redis.del(...left);
      await quitQuietly(redis);
    },
  };
}

export interface TestApp extends TestRedis {
  app: GatewayApp;
  deps: AppDeps;
  logs: LogCapture;
  /** A fresh API key (and user) of `tier`, and the header that presents it. */
  keyOf(tier?: string): Promise<{ key: string; userId: string; headers: Record<string, string> }>;
  /** What the shutdown path flips: from now on /chat and /v1/* answer 503 shutting_down. */
  startShutdown(): void;
}

/**
 * `createApp(deps)` from the real parts, wired by the same composeApi as server.ts,
 * on the shared test Redis under a prefix of its own, without an HTTP server: tests drive it
 * with `app.request()`. No worker: for what the api answers by itself.
 * `env` is api env (strings, as in process.env), parsed by the api's own schema.
 */
export async function buildTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const base = await testRedis();
  const { redis, prefix } = base;
  const e = parseApiEnv({ REDIS_URL: inject('redisUrl'), KEY_PREFIX: prefix, ...env });
  const instanceId = `api-test-${randomUUID().slice(0, 6)}`;
  const logs = new LogCapture();
  const log = createLogger({ service: 'api', instance: instanceId, level: 'debug', destination: logs });
  const subscriber = createRedis(e.redis, 'subscriber', `${instanceId}:sub`);
  await waitReady(subscriber);

  const parts = await composeApi({ env: e, log, redis, subscriber });
  const keyStore = parts.deps.keyStore;
  let users = 0;
  return {
    ...base,
    app: parts.app,
    deps: parts.deps,
    logs,
    async keyOf(tier = 'enterprise') {
      const userId = `user-${users++}`;
      const { key } = await keyStore.create(userId, tier);
      return { key, userId, headers: { authorization: `Bearer ${key}` } };
    },
    startShutdown: parts.startShutdown,
    async close() {
      parts.open.failAll('test over');
      await base.close();
      await parts.stop();
    },
  };
}
