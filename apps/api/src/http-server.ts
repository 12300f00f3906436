import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import type { ApiEnv } from './env.ts';
import type { GatewayApp } from './hono-app.ts';

/** Serves `app` on PORT and HOST; a refusal to listen says which variable to change. */
export function listen(app: GatewayApp, env: Pick<ApiEnv, 'PORT' | 'HOST'>): Promise<HttpServer> {
  return new Promise<HttpServer>((resolve, reject) => {
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
  });
}

/**
 * Stops listening and closes every connection: idle ones at once, one still writing a response
 * once that response ends, for at most `flushMs`; then whatever is left. Resolves once closed.
 */
export async function closeHttp(server: HttpServer, flushMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, flushMs)))]);
  clearTimeout(timer);
  server.closeAllConnections();
  await closed;
}
