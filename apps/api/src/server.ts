import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Logger } from '@llmgw/observability';
import { createRedis, waitReady } from '@llmgw/redis';
import { answerClientErrors } from './client-error.ts';
import { composeApi } from './compose.ts';
import type { ApiEnv } from './env.ts';

export interface ApiServer {
  url: string;
  port: number;
  close(graceMs?: number): Promise<void>;
}

/**
 * One api process: its two Redis connections (commands, and the dedicated subscriber of the reply
 * channel), the parts (compose.ts) and the HTTP server. Used by main.ts and by tests.
 */
export async function startApiServer(env: ApiEnv, log: Logger, instanceId: string): Promise<ApiServer> {
  const redis = createRedis(env.REDIS_URL, 'command', `${instanceId}:cmd`, {
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
  });
  const subscriber = createRedis(env.REDIS_URL, 'subscriber', `${instanceId}:sub`);
  for (const c of [redis, subscriber]) c.on('error', (err) => log.debug({ err: err.message }, 'redis_error'));
  await Promise.all([waitReady(redis), waitReady(subscriber)]);
  const parts = await composeApi({ env, log, instanceId, redis, subscriber });
  const { app, chat, metrics } = parts;

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
    await parts.stop();
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
        parts.startShutdown();
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
        await parts.stop();
        log.info('api_stopped');
      })();
      return closing;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
