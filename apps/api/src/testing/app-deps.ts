import { randomUUID } from 'node:crypto';
import { createLogger } from '@llmgw/observability';
import { createKeys, createRedis, type Keys, quitQuietly, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { createApp } from '../app.ts';
import { ApiKeyStore } from '../auth/api-keys.ts';
import { parseApiEnv } from '../env.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { ChatService } from '../jobs/chat-service.ts';
import { Dispatcher } from '../jobs/dispatcher.ts';
import { FairShare } from '../jobs/fair-share.ts';
import { QueueWatch } from '../jobs/queue-watch.ts';
import { QuotaBook } from '../jobs/quota.ts';
import { ReplyHub } from '../jobs/reply-hub.ts';
import { createApiMetrics } from '../metrics.ts';
import { ModelRegistry } from '../models/registry.ts';
import { LogCapture } from './log-capture.ts';

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
 * `createApp(deps)` from the real parts, wired as server.ts wires them (keep the two in step),
 * on the shared test Redis under a prefix of its own, without an HTTP server: tests drive it
 * with `app.request()`. No worker: for what the api answers by itself.
 * `env` is api env (strings, as in process.env), parsed by the api's own schema.
 */
export async function buildTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const base = await testRedis();
  const { redis, keys, prefix } = base;
  const e = parseApiEnv({ REDIS_URL: inject('redisUrl'), KEY_PREFIX: prefix, ...env });
  const instanceId = `api-test-${randomUUID().slice(0, 6)}`;
  const logs = new LogCapture();
  const log = createLogger({ service: 'api', instance: instanceId, level: 'debug', destination: logs });
  const subscriber = createRedis(e.REDIS_URL, 'subscriber', `${instanceId}:sub`);
  await waitReady(subscriber);

  const dispatcher = new Dispatcher({
    redis,
    keys,
    log,
    maxAttempts: e.BACKEND_MAX_ATTEMPTS,
    retryBackoffMs: e.BACKEND_RETRY_BACKOFF_MS,
  });
  const hub = new ReplyHub({
    subscriber,
    channel: keys.replyChannel(instanceId),
    log,
    silenceTimeoutMs: e.JOB_SILENCE_TIMEOUT_MS,
    recoveryTimeoutMs: e.JOB_RECOVERY_TIMEOUT_MS,
    onOrphan: (jobId) => {
      log.info({ job_id: jobId }, 'orphan_job_cancelled');
      dispatcher.signalCancel(jobId, 'orphaned').catch(() => {});
    },
  });
  await hub.start();
  const models = new ModelRegistry(redis, keys, 1000, { declared: e.MODELS, scaleToZero: e.SCALE_TO_ZERO });
  const metrics = createApiMetrics(
    async () => {
      const known = [...(await models.snapshot()).known];
      const depths = await Promise.all(known.map((m) => dispatcher.waiting(m)));
      return new Map(known.map((m, i) => [m, depths[i] ?? 0]));
    },
    (model) => models.isKnown(model),
  );
  const watch = new QueueWatch({
    dispatcher,
    log,
    queueTimeoutMs: e.QUEUE_TIMEOUT_MS,
    positionIntervalMs: e.QUEUE_POSITION_INTERVAL_MS,
    agingMs: e.PRIORITY_AGING_MS,
    onRemoved: (c) => chat.jobRemoved(c),
    noWorkingBackend: (model) => models.noWorkingBackend(model),
  });
  const fairShare = new FairShare({ redis, keys, log, waitLeaseMs: e.QUEUE_TIMEOUT_MS + 5000 });
  const chat = new ChatService({
    hub,
    dispatcher,
    models,
    watch,
    log,
    queueMaxWaiting: e.QUEUE_MAX_WAITING,
    shedAt: e.SHED_AT,
    fairShare,
    queueTimeoutMs: e.QUEUE_TIMEOUT_MS,
    tiers: e.TIERS,
    quota: new QuotaBook(redis, keys),
    metrics,
  });
  let shuttingDown = false;
  const keyStore = new ApiKeyStore(redis, keys);
  const deps: AppDeps = {
    log,
    chat,
    models,
    health: {
      redis,
      models,
      dispatcher,
      timeoutMs: 80,
      readyMaxWaiting: e.READY_MAX_WAITING,
      isShuttingDown: () => shuttingDown,
    },
    metrics,
    authMode: e.AUTH_MODE,
    keyStore,
    tiers: e.TIERS,
    redis,
    keys,
    rateWindowMs: e.RATE_LIMIT_WINDOW_MS,
    adminToken: e.ADMIN_TOKEN,
    adminReadonly: e.ADMIN_READONLY,
    dispatcher,
    defaultModel: e.DEFAULT_MODEL,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    trustProxy: e.TRUST_PROXY,
  };
  let users = 0;
  return {
    ...base,
    app: createApp(deps),
    deps,
    logs,
    async keyOf(tier = 'enterprise') {
      const userId = `user-${users++}`;
      const { key } = await keyStore.create(userId, tier);
      return { key, userId, headers: { authorization: `Bearer ${key}` } };
    },
    startShutdown: () => {
      shuttingDown = true;
    },
    async close() {
      chat.failAll('test over');
      watch.stop();
      fairShare.stop();
      await hub.stop();
      await dispatcher.close();
      await quitQuietly(subscriber);
      await base.close();
    },
  };
}
