import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { AppEnv } from '../../context.ts';
import { ApiError } from '../../errors/index.ts';
import { readBodyText } from '../../middleware/json-body.ts';
import { SESSION_COOKIE, sessionValid } from '../session.ts';

/**
 * CSRF tokens of the admin page's forms (OWASP's HMAC-based synchronizer token):
 *
 *   csrf = base64url HMAC-SHA256(key = ADMIN_TOKEN, "llmgw-admin.csrf.v1.<session cookie value>")
 *
 * The session cookie is SameSite=Strict, which keeps other *sites* from sending it; but a site is
 * the registrable domain, not the origin: any page on the same host under another port (the
 * public api on :8000 and the admin listener on :8080 share 127.0.0.1) or on a sibling subdomain
 * is "same-site" and its forms would carry the cookie. The token is what such a page cannot have:
 * it is derived from the HttpOnly cookie and ADMIN_TOKEN, so it is per session (a new login, a new
 * token), expires with the session, and needs no state in Redis (every replica checks it).
 */
export const CSRF_FIELD = 'csrf';

/** The token of the session whose cookie value is `session`. */
export const csrfTokenFor = (session: string, adminToken: string): string =>
  createHmac('sha256', adminToken).update(`llmgw-admin.csrf.v1.${session}`).digest('base64url');

/** The token of this request's session, or undefined without a valid session (a Bearer script). */
export function csrfTokenOf(c: Context<AppEnv>, adminToken: string): string | undefined {
  const session = getCookie(c, SESSION_COOKIE);
  return session && sessionValid(session, adminToken) ? csrfTokenFor(session, adminToken) : undefined;
}

/**
 * The urlencoded body of a form of the page (BODY_LIMIT_BYTES applies), once its CSRF token is
 * checked: 403 `forbidden` without a valid session or with a missing or wrong token. A script with
 * `Authorization: Bearer` has no session: it has the JSON API (`/admin/keys`) instead.
 */
export async function readCheckedForm(c: Context<AppEnv>, adminToken: string): Promise<URLSearchParams> {
  const form = new URLSearchParams(await readBodyText(c));
  const expected = csrfTokenOf(c, adminToken);
  const presented = Buffer.from(form.get(CSRF_FIELD) ?? '');
  const ok =
    expected !== undefined &&
    presented.length === Buffer.byteLength(expected) &&
    timingSafeEqual(presented, Buffer.from(expected));
  if (!ok) {
    c.get('log').warn({ session: expected !== undefined }, 'admin_page_csrf_refused');
    throw new ApiError(
      'forbidden',
      expected === undefined
        ? 'the admin page’s forms need a browser session (log in at /admin/login); scripts use /admin/keys'
        : 'the form’s CSRF token is missing or stale: reload the admin page and try again',
    );
  }
  return form;
}
