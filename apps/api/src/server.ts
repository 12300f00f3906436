import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Logger } from '@llmgw/observability';
import { createKeys, createRedis, quitQuietly, waitReady } from '@llmgw/redis';
import { createApp } from './app.ts';
import { ApiKeyStore } from './auth/api-keys.ts';
import { answerClientErrors } from './client-error.ts';
import type { ApiEnv } from './env.ts';
import { ChatService } from './jobs/chat-service.ts';
import { Dispatcher } from './jobs/dispatcher.ts';
import { FairShare } from './jobs/fair-share.ts';
import { QueueWatch } from './jobs/queue-watch.ts';
import { QuotaBook } from './jobs/quota.ts';
import { ReplyHub } from './jobs/reply-hub.ts';
import { createApiMetrics } from './metrics.ts';
import { ModelRegistry } from './models/registry.ts';

export interface ApiServer {
  url: string;
  port: number;
  close(graceMs?: number): Promise<void>;
}

/**
 * Wires one api process: Redis connections (commands, and the dedicated subscriber of the reply
 * channel), the hub, the dispatcher, the app, and the HTTP server. Used by main.ts and by tests.
 */
export async function startApiServer(env: ApiEnv, log: Logger, instanceId: string): Promise<ApiServer> {
  const keys = createKeys(env.KEY_PREFIX);
  const redis = createRedis(env.REDIS_URL, 'command', `${instanceId}:cmd`, {
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
  });
  const subscriber = createRedis(env.REDIS_URL, 'subscriber', `${instanceId}:sub`);
  for (const c of [redis, subscriber]) c.on('error', (err) => log.debug({ err: err.message }, 'redis_error'));
  await Promise.all([waitReady(redis), waitReady(subscriber)]);

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
  const health = {
    redis,
    models,
    dispatcher,
    // Probes must answer within 100 ms even while Redis hangs.
    timeoutMs: 80,
    readyMaxWaiting: env.READY_MAX_WAITING,
    isShuttingDown: () => shuttingDown,
  };
  const app = createApp({
    log,
    chat,
    models,
    health,
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
  });

  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: env.PORT, hostname: env.HOST }, () => resolve(s as HttpServer));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${env.PORT} is in use: set PORT to a free port (0: any)`
            : `cannot listen on ${env.HOST}:${env.PORT}: ${err.message}`,
        ),
      ),
    );
  }).catch(async (err: Error) => {
    watch.stop();
    fairShare.stop();
    await hub.stop();
    await dispatcher.close();
    await quitQuietly(subscriber);
    await quitQuietly(redis);
    throw err;
  });
  // Requests the HTTP parser refuses never reach the app: answered (JSON) and counted here.
  answerClientErrors(server, {
    log,
    onAnswered: (status) =>
      metrics.httpRequests.inc({ route: 'unparsed', method: 'unknown', status: String(status) }),
  });
  const { port } = server.address() as AddressInfo;
  const host = env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST;
  if (!env.ADMIN_TOKEN) log.info('admin API and Bull Board disabled: ADMIN_TOKEN is not set');
  else log.info({ read_only: env.ADMIN_READONLY, board: '/admin/queues' }, 'admin_enabled');
  if (env.AUTH_MODE === 'trusted_headers') {
    log.warn(
      'AUTH_MODE=trusted_headers: X-User-ID/X-User-Tier are trusted; never expose this api to clients directly',
    );
  }
  log.info({ port, instance: instanceId, auth_mode: env.AUTH_MODE }, 'api_listening');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    /**
     * Graceful stop, in this order: /ready answers 503 and new chat requests get 503
     * `shutting_down` at once (the listener stays open so probes and load balancers see it);
     * open requests may finish for `graceMs`; the rest end with a `shutting_down` error frame and
     * their jobs are cancelled; then connections, subscriptions and Redis close. Idempotent.
     */
    close(graceMs = 0) {
      closing ??= (async () => {
        shuttingDown = true;
        server.closeIdleConnections();
        const deadline = Date.now() + graceMs;
        while (chat.openCount > 0 && Date.now() < deadline) await sleep(50);
        if (chat.openCount > 0) {
          log.warn({ open: chat.openCount }, 'shutdown_grace_expired_ending_streams');
          chat.failAll('the gateway is restarting; retry the request');
          const flushBy = Date.now() + 2000;
          while (chat.openCount > 0 && Date.now() < flushBy) await sleep(20);
        }
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        watch.stop();
        fairShare.stop();
        await hub.stop();
        await dispatcher.close();
        await quitQuietly(subscriber);
        await quitQuietly(redis);
        log.info('api_stopped');
      })();
      return closing;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
