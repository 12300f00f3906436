import type { Logger } from '@llmgw/observability';
import { createKeys, quitQuietly } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { createApp } from './app.ts';
import { ApiKeyStore } from './auth/api-keys.ts';
import type { ApiEnv } from './env.ts';
import type { AppDeps, GatewayApp } from './hono-app.ts';
import { ChatService } from './jobs/chat-service.ts';
import { Dispatcher } from './jobs/dispatcher.ts';
import { FairShare } from './jobs/fair-share.ts';
import { QueueWatch } from './jobs/queue-watch.ts';
import { QuotaBook } from './jobs/quota.ts';
import { ReplyHub } from './jobs/reply-hub.ts';
import { type ApiMetrics, createApiMetrics } from './metrics.ts';
import { ModelRegistry } from './models/registry.ts';

export interface ComposeOptions {
  env: ApiEnv;
  log: Logger;
  instanceId: string;
  /** A `command` connection (the request path). */
  redis: Redis;
  /** A dedicated subscriber for this process's reply channel. */
  subscriber: Redis;
}

export interface ApiParts {
  app: GatewayApp;
  deps: AppDeps;
  chat: ChatService;
  metrics: ApiMetrics;
  /** From now on /ready is 503 and new chat requests get 503 `shutting_down`. */
  startShutdown(): void;
  /** Stops the timers and the reply channel and closes both connections (after the HTTP side). */
  stop(): Promise<void>;
}

/**
 * The api's composition root: every part of one api process from its env and two Redis
 * connections, the reply channel subscribed before anything can enqueue. server.ts adds the HTTP
 * server; tests drive `app.request()` on the same parts.
 */
export async function composeApi({
  env,
  log,
  instanceId,
  redis,
  subscriber,
}: ComposeOptions): Promise<ApiParts> {
  const keys = createKeys(env.KEY_PREFIX);
  const dispatcher = new Dispatcher({
    redis,
    keys,
    log,
    maxAttempts: env.BACKEND_MAX_ATTEMPTS,
    retryBackoffMs: env.BACKEND_RETRY_BACKOFF_MS,
  });
  const hub = new ReplyHub({
    subscriber,
    channel: keys.replyChannel(instanceId),
    log,
    silenceTimeoutMs: env.JOB_SILENCE_TIMEOUT_MS,
    recoveryTimeoutMs: env.JOB_RECOVERY_TIMEOUT_MS,
    onOrphan: (jobId) => {
      log.info({ job_id: jobId }, 'orphan_job_cancelled');
      dispatcher.signalCancel(jobId, 'orphaned').catch(() => {});
    },
  });
  await hub.start();
  const models = new ModelRegistry(redis, keys, 1000, {
    declared: env.MODELS,
    scaleToZero: env.SCALE_TO_ZERO,
    forgetAfterMs: env.MODEL_FORGET_AFTER_MS,
  });
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
    queueTimeoutMs: env.QUEUE_TIMEOUT_MS,
    positionIntervalMs: env.QUEUE_POSITION_INTERVAL_MS,
    agingMs: env.PRIORITY_AGING_MS,
    onRemoved: (c) => chat.jobRemoved(c),
    noWorkingBackend: (model) => models.noWorkingBackend(model),
  });
  const fairShare = new FairShare({
    redis,
    keys,
    log,
    // A job never waits longer than its deadline; the margin covers its removal in flight.
    waitLeaseMs: env.QUEUE_TIMEOUT_MS + 5000,
  });
  const chat = new ChatService({
    hub,
    dispatcher,
    models,
    watch,
    log,
    queueMaxWaiting: env.QUEUE_MAX_WAITING,
    shedAt: env.SHED_AT,
    fairShare,
    queueTimeoutMs: env.QUEUE_TIMEOUT_MS,
    tiers: env.TIERS,
    quota: new QuotaBook(redis, keys),
    metrics,
  });
  let shuttingDown = false;
  const deps: AppDeps = {
    log,
    chat,
    models,
    health: {
      redis,
      models,
      dispatcher,
      // Probes must answer within 100 ms even while Redis hangs.
      timeoutMs: 80,
      readyMaxWaiting: env.READY_MAX_WAITING,
      isShuttingDown: () => shuttingDown,
    },
    metrics,
    authMode: env.AUTH_MODE,
    keyStore: new ApiKeyStore(redis, keys),
    tiers: env.TIERS,
    redis,
    keys,
    rateWindowMs: env.RATE_LIMIT_WINDOW_MS,
    adminToken: env.ADMIN_TOKEN,
    adminReadonly: env.ADMIN_READONLY,
    dispatcher,
    defaultModel: env.DEFAULT_MODEL,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    trustProxy: env.TRUST_PROXY,
  };
  return {
    app: createApp(deps),
    deps,
    chat,
    metrics,
    startShutdown: () => {
      shuttingDown = true;
    },
    async stop() {
      watch.stop();
      fairShare.stop();
      await hub.stop();
      await dispatcher.close();
      await quitQuietly(subscriber);
      await quitQuietly(redis);
    },
  };
}
