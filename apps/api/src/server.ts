import type { AddressInfo } from 'node:net';
import { type Logger, runShutdown } from '@llmgw/observability';
import { createRedis, waitReady } from '@llmgw/redis';
import { answerClientErrors } from './client-error.ts';
import { composeApi } from './compose.ts';
import type { ApiEnv } from './env.ts';
import { closeHttp, listen } from './http-server.ts';

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
  const redis = createRedis(env.redis, 'command', `${instanceId}:cmd`, {
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
  });
  const subscriber = createRedis(env.redis, 'subscriber', `${instanceId}:sub`);
  for (const c of [redis, subscriber]) c.on('error', (err) => log.debug({ err: err.message }, 'redis_error'));
  await Promise.all([waitReady(redis), waitReady(subscriber)]);
  const parts = await composeApi({ env, log, redis, subscriber });
  const { app, open, metrics } = parts;

  const server = await listen(app, env).catch(async (err: Error) => {
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
  else log.info({ read_only: env.ADMIN_READONLY, page: '/admin', board: '/admin/queues' }, 'admin_enabled');
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
     * their jobs are cancelled (2 s to flush); then connections close (a response still being
     * written gets 1 s to end), then subscriptions and Redis. Waits are awaited, never polled; each
     * step in its own try/catch: one that fails is logged and the next still runs. Idempotent.
     */
    close(graceMs = 0) {
      closing ??= runShutdown(log, [
        { name: 'refuse_new_requests', run: () => parts.startShutdown() },
        { name: 'close_idle_connections', run: () => server.closeIdleConnections() },
        { name: 'grace', run: () => open.drainedWithin(graceMs) },
        {
          name: 'end_open_requests',
          run: () => {
            if (open.count === 0) return;
            log.warn({ open: open.count }, 'shutdown_grace_expired_ending_streams');
            open.failAll('the gateway is restarting; retry the request');
            return open.drainedWithin(2000);
          },
        },
        { name: 'close_connections', run: () => closeHttp(server, 1000) },
        { name: 'stop_parts', run: () => parts.stop() },
      ]).then(() => log.info('api_stopped'));
      return closing;
    },
  };
}
