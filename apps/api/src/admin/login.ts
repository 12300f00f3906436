import type { GatewayApp } from '../app.ts';
import { tokenMatches } from '../middleware/admin-auth.ts';
import { endSession, startSession } from './session.ts';

const DEFAULT_NEXT = '/admin/queues';

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

/**
 * The browser way into the admin surface: `GET /admin/login` (a form), `POST /admin/login`
 * (token → session cookie, then back to `next`), `GET /admin/logout`. Registered before the
 * admin guard: these are the only /admin routes that answer without credentials.
 */
export function registerAdminLogin(app: GatewayApp, { token }: { token: string }): void {
  app.get('/admin/login', (c) => c.html(loginPage(safeNext(c.req.query('next')))));
  app.post('/admin/login', async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const next = safeNext(form.next);
    const presented = typeof form.token === 'string' ? form.token.trim() : '';
    if (!presented || !tokenMatches(presented, token)) {
      c.var.log.warn('admin_login_failed');
      return c.html(loginPage(next, 'Wrong token.'), 401);
    }
    startSession(c, token);
    c.var.log.info('admin_login');
    return c.redirect(next, 303);
  });
  app.get('/admin/logout', (c) => {
    endSession(c);
    return c.redirect('/admin/login', 303);
  });
}
