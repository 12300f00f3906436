import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

/**
 * ADMIN_READONLY=1: operators may look (every GET) but change nothing — the admin API's POST and
 * DELETE routes and Bull Board's own mutating calls (retry, clean, pause, …) answer 403, whatever
 * the board's UI shows.
 */
export function readOnlyAdmin(): MiddlewareHandler<AppEnv> {
  return async function readOnlyAdminMiddleware(c, next) {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      throw new ApiError('forbidden', 'the admin surface is read-only (ADMIN_READONLY=1)');
    }
    await next();
  };
}
