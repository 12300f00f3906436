import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { type LoginThrottle, throttleDown, throttledError } from '../admin/login-throttle.ts';
import { clientAddress } from '../client-address.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

/** Constant-time comparison, so the token cannot be guessed byte by byte from response times. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface AdminAuthOptions {
  token: string;
  /** The login form's throttle: a wrong Authorization header counts as a failed attempt there. */
  throttle: LoginThrottle;
  /** TRUST_PROXY: the client address from X-Forwarded-For (client-address.ts). */
  trustProxy?: boolean;
}

/**
 * `/admin/*` API: `Authorization: Bearer <ADMIN_TOKEN>`. A request that presents any
 * Authorization header that is not the token is a failed attempt of its client address, counted
 * with the login form's; once the address is throttled, every attempt with a header gets 429 and
 * Retry-After, the right token too, or the answer would tell a guesser when it hit. A request
 * without the header guesses nothing: 401, not counted.
 */
export function adminAuth({
  token,
  throttle,
  trustProxy = false,
}: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (header === undefined) throw unauthorized();
    const client = clientAddress(c, trustProxy);
    const blockedFor = await throttle.blockedFor(client).catch(throttleDown);
    if (blockedFor !== undefined) {
      c.get('log')?.warn({ client, retry_after_s: blockedFor }, 'admin_auth_throttled');
      throw throttledError(blockedFor);
    }
    const presented = header.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (!presented || !tokenMatches(presented, token)) {
      await throttle.failed(client).catch(throttleDown);
      c.get('log')?.warn({ client }, 'admin_auth_failed');
      throw unauthorized();
    }
    await next();
  };
}

const unauthorized = () =>
  new ApiError('unauthorized', 'admin token required: Authorization: Bearer <ADMIN_TOKEN>');
