import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { clientAddress } from '../client-address.ts';
import { ApiError } from '../errors/index.ts';
import type { GatewayApp } from '../hono-app.ts';
import { tokenMatches } from '../middleware/admin-auth.ts';
import { readBodyText } from '../middleware/json-body.ts';
import { type LoginThrottle, throttleDown, throttledError } from './login-throttle.ts';
import { endSession, startSession } from './session.ts';

/** The admin page (keys and usage), which links to Bull Board. */
const DEFAULT_NEXT = '/admin';

/** Only back into the admin surface, never to another origin (`//host`, `/\host`). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[^/\\][^\\]*)?$/.test(next) ? next : DEFAULT_NEXT;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function loginPage(next: string, error?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>llm-gateway admin: log in</title>
<style>body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;margin:.5rem 0}
button{font:inherit;padding:.5rem 1.5rem}.error{color:#b00020}</style></head>
<body><h1>llm-gateway admin</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/admin/login">
<label for="token">Admin token (ADMIN_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Log in</button>
</form></body></html>`;
}

export interface AdminLoginDeps {
  token: string;
  throttle: LoginThrottle;
  /** TRUST_PROXY: take the client address from X-Forwarded-For (see client-address.ts). */
  trustProxy: boolean;
}

/**
 * The browser way into the admin surface: `GET /admin/login` (a form), `POST /admin/login`
 * (token → session cookie, then back to `next`), `GET /admin/logout`. Registered before the
 * admin guard: these are the only /admin routes that answer without credentials. After too many
 * wrong tokens from one address — here or as `Authorization: Bearer` (the throttle is shared with
 * the guard, admin-auth.ts) — its attempts get 429 with Retry-After, a right token too, or the
 * refusal would tell a guesser when it hit. A browser (`Accept: text/html`, as a form submit
 * sends) gets the form again with the reason; a script gets the error body every /admin route
 * answers, the guard's 429 included.
 */
export function registerAdminLogin(app: GatewayApp, { token, throttle, trustProxy }: AdminLoginDeps): void {
  app.get('/admin/login', (c) => c.html(loginPage(safeNext(c.req.query('next')))));
  app.post('/admin/login', async (c) => {
    // An HTML form's urlencoded body, bounded by BODY_LIMIT_BYTES (a 413 above it).
    const form: Record<string, unknown> = Object.fromEntries(new URLSearchParams(await readBodyText(c)));
    const next = safeNext(form.next);
    const refuse = (err: ApiError) => {
      if (!(c.req.header('accept') ?? '').includes('text/html')) throw err;
      return c.html(loginPage(next, err.message), err.status as ContentfulStatusCode, err.opts.headers);
    };
    const client = clientAddress(c, trustProxy);
    const blockedFor = await throttle.blockedFor(client).catch(throttleDown);
    if (blockedFor !== undefined) {
      c.get('log').warn({ client, retry_after_s: blockedFor }, 'admin_login_throttled');
      return refuse(throttledError(blockedFor));
    }
    const presented = typeof form.token === 'string' ? form.token.trim() : '';
    if (!presented || !tokenMatches(presented, token)) {
      await throttle.failed(client).catch(throttleDown);
      c.get('log').warn({ client }, 'admin_login_failed');
      return refuse(new ApiError('unauthorized', 'Wrong token.'));
    }
    startSession(c, token);
    c.get('log').info('admin_login');
    return c.redirect(next, 303);
  });
  app.get('/admin/logout', (c) => {
    endSession(c);
    return c.redirect('/admin/login', 303);
  });
}
