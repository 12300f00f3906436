import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { clip } from '../clip.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';
import { type AdminAuthOptions, adminAuth } from '../middleware/admin-auth.ts';

/**
 * Browser sessions of the admin surface. Bull Board's page and its own fetches cannot send an
 * `Authorization: Bearer` header, so `POST /admin/login` trades ADMIN_TOKEN for a cookie:
 *
 *   llmgw_admin = v1.<expiry, unix seconds>.<base64url HMAC-SHA256(key = ADMIN_TOKEN, "llmgw-admin.v1.<expiry>")>
 *
 * Stateless (every replica with the same token verifies it, nothing in Redis), never the token
 * itself, expiring, and void for all browsers at once when ADMIN_TOKEN is rotated.
 * HttpOnly (no script reads it), SameSite=Strict (no other site's page can make the browser send
 * it, which is the CSRF defence of the board's mutating requests), Secure on https, Path=/admin.
 */
export const SESSION_COOKIE = 'llmgw_admin';
export const SESSION_TTL_S = 12 * 3600;

const sign = (token: string, expiry: number) =>
  createHmac('sha256', token).update(`llmgw-admin.v1.${expiry}`).digest('base64url');

export function sessionValue(token: string, nowMs = Date.now()): string {
  const expiry = Math.floor(nowMs / 1000) + SESSION_TTL_S;
  return `v1.${expiry}.${sign(token, expiry)}`;
}

export function sessionValid(value: string | undefined, token: string, nowMs = Date.now()): boolean {
  const m = value?.match(/^v1\.(\d{1,12})\.([\w-]{43})$/);
  if (!m) return false;
  const expiry = Number(m[1]);
  if (expiry * 1000 <= nowMs) return false;
  const a = Buffer.from(m[2]!);
  const b = Buffer.from(sign(token, expiry));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** https as the browser sees it: directly, or through a proxy that says so. */
function isHttps(c: Context): boolean {
  const forwarded = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim();
  return forwarded === 'https' || new URL(c.req.url).protocol === 'https:';
}

export function startSession(c: Context<AppEnv>, token: string): void {
  setCookie(c, SESSION_COOKIE, sessionValue(token), {
    path: '/admin',
    httpOnly: true,
    sameSite: 'Strict',
    secure: isHttps(c),
    maxAge: SESSION_TTL_S,
  });
}

export function endSession(c: Context<AppEnv>): void {
  setCookie(c, SESSION_COOKIE, '', {
    path: '/admin',
    httpOnly: true,
    sameSite: 'Strict',
    secure: isHttps(c),
    maxAge: 0,
  });
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A change made with the session cookie must come from a page of the same origin: the browser
 * says where a request comes from (`Sec-Fetch-Site`), and `SameSite=Strict` alone lets a page of
 * the same *site* (another port of the host, a sibling subdomain) post to /admin — a `text/plain`
 * form body can be valid JSON. Requests without the header (not a browser) are a script's, which
 * authenticates with Bearer anyway. The admin page's own forms carry a CSRF token besides.
 */
function refuseCrossSite(c: Context<AppEnv>): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const site = c.req.header('sec-fetch-site');
  if (site === undefined || site === 'same-origin' || site === 'none') return;
  throw new ApiError(
    'forbidden',
    `a change to /admin from another origin (Sec-Fetch-Site: ${clip(site)}) is refused`,
  );
}

/** Where a browser that is not logged in is sent, coming back to `next` afterwards. */
export const loginUrl = (next: string) => `/admin/login?next=${encodeURIComponent(next)}`;

/**
 * The guard of everything under /admin but the login page: the session cookie, or
 * `Authorization: Bearer <ADMIN_TOKEN>` (scripts; {@link adminAuth}'s 401 otherwise, and its 429
 * once the client address is throttled). A browser asking for a page without either is redirected
 * to the login form instead of a JSON 401. A valid session passes a throttled address: it took the
 * token to get, and forging one means guessing an HMAC keyed with it.
 */
export function adminGuard(opts: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  const { token } = opts;
  const bearer = adminAuth(opts);
  return async function adminGuardMiddleware(c, next) {
    if (sessionValid(getCookie(c, SESSION_COOKIE), token)) {
      refuseCrossSite(c);
      return next();
    }
    const browser = c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');
    if (browser && !c.req.header('authorization')) return c.redirect(loginUrl(c.req.path), 302);
    return bearer(c, next);
  };
}
