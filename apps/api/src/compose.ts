import { type Logger, runShutdown } from '@llmgw/observability';
import { createKeys, FileStore, queueTelemetry, quitQuietly, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { Admission } from './admission/admission.ts';
import { FairShare } from './admission/fair-share.ts';
import { QuotaBook } from './admission/quota.ts';
import { createApp } from './app.ts';
import { ApiKeyStore } from './auth/api-keys.ts';
import { Batches } from './batch/batches.ts';
import { BatchFinalizer, BatchSweep } from './batch/finalize.ts';
import { EventLog } from './durable/event-log.ts';
import { Idempotency } from './durable/idempotency.ts';
import { JobRecords } from './durable/job-record.ts';
import { Jobs } from './durable/jobs.ts';
import type { ApiEnv } from './env.ts';
import { Files } from './files/files.ts';
import type { AppDeps, GatewayApp } from './hono-app.ts';
import { type ApiMetrics, createApiMetrics } from './metrics.ts';
import { ModelRegistry } from './models/registry.ts';
import { JobCanceller } from './queue/cancel.ts';
import { Dispatcher } from './queue/dispatcher.ts';
import { OpenChats } from './queue/open-chats.ts';
import { QueueWatch } from './queue/queue-watch.ts';
import { Submitter } from './queue/submit.ts';
import { ReplyHub } from './reply/reply-hub.ts';
import { UsageLedger } from './usage/ledger.ts';

export interface ComposeOptions {
  env: ApiEnv;
  log: Logger;
  /** A `command` connection (the request path). */
  redis: Redis;
  /** A dedicated subscriber for this process's reply channel. */
  subscriber: Redis;
}

export interface ApiParts {
  app: GatewayApp;
  deps: AppDeps;
  /** Requests with a job under way: what shutdown drains, then ends. */
  open: OpenChats;
  metrics: ApiMetrics;
  /** From now on /ready is 503 and new chat requests get 503 `shutting_down`. */
  startShutdown(): void;
  /**
   * After the HTTP side: stops the timers and the reply channel and closes the queues and both
   * connections, each step in its own try/catch (a failure is logged, the rest still run).
   */
  stop(): Promise<void>;
}

/**
 * The api's composition root: every part of one api process from its env and two Redis
 * connections (each job's channel is subscribed before it is enqueued). server.ts adds the HTTP
 * server; tests drive `app.request()` on the same parts.
 */
export async function composeApi({ env, log, redis, subscriber }: ComposeOptions): Promise<ApiParts> {
  const keys = createKeys(env.KEY_PREFIX, { cluster: env.redis.mode === 'cluster' });
  const dispatcher = new Dispatcher({
    redis,
    keys,
    log,
    maxAttempts: env.BACKEND_MAX_ATTEMPTS,
    retryBackoffMs: env.BACKEND_RETRY_BACKOFF_MS,
    telemetry: queueTelemetry(env.tracing),
  });
  const retainMs = env.JOB_RESULT_TTL_S * 1000;
  const eventLog = new EventLog({ redis, keys, retainMs, maxEvents: env.JOB_LOG_MAX_EVENTS });
  const hub = new ReplyHub({
    subscriber,
    keys,
    log,
    silenceTimeoutMs: env.JOB_SILENCE_TIMEOUT_MS,
    recoveryTimeoutMs: env.JOB_RECOVERY_TIMEOUT_MS,
    // What pub/sub dropped (a reconnect, a worker that waited for Redis) is in the job's log.
    readLog: async (jobId) => (await eventLog.read(jobId)).events,
  });
  hub.start();
  const records = new JobRecords({ redis, keys, ttlMs: env.QUEUE_TIMEOUT_MS + retainMs });
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
    async () => {
      const known = [...(await models.snapshot()).known];
      const depths = await Promise.all(known.map((m) => dispatcher.batchWaiting(m)));
      return new Map(known.map((m, i) => [m, depths[i] ?? 0]));
    },
  );
  const fairShare = new FairShare({
    redis,
    keys,
    log,
    // A job never waits longer than its deadline; the margin covers its removal in flight.
    waitLeaseMs: env.QUEUE_TIMEOUT_MS + 5000,
  });
  const admission = new Admission({
    keys,
    models,
    queue: dispatcher,
    fairShare,
    quota: new QuotaBook(redis),
    tiers: env.TIERS,
    queueMaxWaiting: env.QUEUE_MAX_WAITING,
    shedAt: env.SHED_AT,
    metrics,
    log,
  });
  const usage = new UsageLedger({
    redis,
    keys,
    log,
    retentionDays: env.USAGE_RETENTION_DAYS,
    ...(env.PRICES && { prices: env.PRICES }),
  });
  const watch = new QueueWatch({
    dispatcher,
    log,
    queueTimeoutMs: env.QUEUE_TIMEOUT_MS,
    positionIntervalMs: env.QUEUE_POSITION_INTERVAL_MS,
    agingMs: env.PRIORITY_AGING_MS,
    onRemoved: (c, error) => {
      admission.neverRan(c);
      usage.neverRan(c, error);
    },
    noWorkingBackend: (model) => models.noWorkingBackend(model),
  });
  const canceller = new JobCanceller({
    dispatcher,
    admission,
    usage,
    events: eventLog,
    log,
    graceMs: env.RESUME_GRACE_MS,
  });
  const open = new OpenChats(canceller, env.RESUME_GRACE_MS > 0);
  const submitter = new Submitter({
    hub,
    dispatcher,
    admission,
    watch,
    canceller,
    open,
    records,
    log: eventLog,
    queueTimeoutMs: env.QUEUE_TIMEOUT_MS,
    graceMs: env.RESUME_GRACE_MS,
  });
  const jobs = new Jobs({ hub, records, log: eventLog, dispatcher, admission, usage, open });
  // Uploads write 1 MiB chunks: on a connection of their own, so no request's commands wait behind one.
  const filesRedis = redis.duplicate();
  filesRedis.on('error', (err) => log.debug({ err: err.message }, 'redis_error'));
  await waitReady(filesRedis);
  const fileTtlMs = env.FILE_TTL_DAYS * 86_400_000;
  const fileStore = new FileStore({ redis: filesRedis, keys, maxTtlMs: fileTtlMs });
  const files = new Files({
    store: fileStore,
    maxBytes: env.BATCH_FILE_MAX_BYTES,
    maxRequests: env.BATCH_MAX_REQUESTS,
    ttlMs: fileTtlMs,
  });
  const onBatchStatus = (status: string) => metrics.batches.inc({ status });
  const batches = new Batches({
    redis,
    keys,
    log,
    store: fileStore,
    dispatcher,
    models,
    defaultModel: env.DEFAULT_MODEL,
    maxRequests: env.BATCH_MAX_REQUESTS,
    maxLineBytes: env.BODY_LIMIT_BYTES,
    retentionMs: fileTtlMs,
    onStatus: onBatchStatus,
  });
  const batchSweep = new BatchSweep({
    redis,
    keys,
    log,
    finalizer: new BatchFinalizer({
      redis,
      keys,
      log,
      store: fileStore,
      fileTtlMs,
      onStatus: onBatchStatus,
      batchQueue: (model) => dispatcher.batchQueue(model),
    }),
  });
  batchSweep.start();
  let shuttingDown = false;
  const deps: AppDeps = {
    log,
    tracing: env.tracing.enabled,
    admission,
    submitter,
    canceller,
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
    jobs,
    idempotency: new Idempotency(redis, keys),
    usage,
    files,
    batches,
  };
  return {
    app: createApp(deps),
    deps,
    open,
    metrics,
    startShutdown: () => {
      shuttingDown = true;
    },
    async stop() {
      await runShutdown(log, [
        { name: 'stop_queue_watch', run: () => watch.stop() },
        { name: 'stop_batch_sweep', run: () => batchSweep.stop() },
        { name: 'unsubscribe_job_channels', run: () => hub.stop() },
        { name: 'close_queues', run: () => dispatcher.close() },
        { name: 'quit_subscriber', run: () => quitQuietly(subscriber) },
        { name: 'quit_redis', run: () => quitQuietly(redis) },
        { name: 'quit_files_redis', run: () => quitQuietly(filesRedis) },
      ]);
    },
  };
}
