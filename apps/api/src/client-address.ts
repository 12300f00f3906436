import type { Context } from 'hono';
import type { AppEnv } from './context.ts';

/**
 * The address of the client, for per-client limits. `trustProxy` (TRUST_PROXY=1): the api is
 * behind one reverse proxy, which appends the address it saw to X-Forwarded-For (nginx
 * `$proxy_add_x_forwarded_for`), so the last entry is the client; earlier entries are whatever the
 * client sent and are never used. Otherwise the header is ignored — anyone can write it — and the
 * socket's peer is the client. `unknown` without a socket (app.request() in tests).
 */
export function clientAddress(c: Context<AppEnv>, trustProxy: boolean): string {
  if (trustProxy) {
    const last = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (last) return last;
  }
  return c.env?.incoming?.socket.remoteAddress ?? 'unknown';
}
