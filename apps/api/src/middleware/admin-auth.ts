import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

/** Constant-time comparison, so the token cannot be guessed byte by byte from response times. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `/admin/*` API: `Authorization: Bearer <ADMIN_TOKEN>`. */
export function adminAuth({ token }: { token: string }): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const presented = c.req.header('authorization')?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (!presented || !tokenMatches(presented, token)) {
      throw new ApiError('unauthorized', 'admin token required: Authorization: Bearer <ADMIN_TOKEN>');
    }
    await next();
  };
}
