import type { Context } from 'hono';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ApiKeyStore } from '../../auth/api-keys.ts';
import type { AppEnv } from '../../context.ts';
import { ApiError } from '../../errors/index.ts';
import type { AppDeps, GatewayApp } from '../../hono-app.ts';
import { parseUsageQuery } from '../../usage/query.ts';
import { createKey, revokeKey, rotateKey } from '../key-actions.ts';
import { openBatches } from './batches.ts';
import { csrfTokenOf, readCheckedForm } from './csrf.ts';
import { type CreateForm, createFormOf, createRequestOf, rotateRequestOf } from './form.ts';
import { adminPage, FORM_PATHS, PAGE_PATH, STYLE_HASH, secretPage, type UsageView } from './view.ts';

export type AdminPageDeps = Pick<
  AppDeps,
  'keyStore' | 'tiers' | 'usage' | 'adminReadonly' | 'redis' | 'keys'
> & {
  adminToken: string;
};

/**
 * Nothing but the page's own style sheet; no script, no frame around it (the forms mutate:
 * clickjacking), forms only to this origin, no referrer.
 */
const CSP = `default-src 'none'; style-src '${STYLE_HASH}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

function pageHeaders(c: Context<AppEnv>): void {
  c.header('Content-Security-Policy', CSP);
  c.header('X-Frame-Options', 'DENY');
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
  // The secret page above all: not kept by the browser's cache or back button.
  c.header('Cache-Control', 'no-store');
}

const USAGE_GROUP_BY = 'key,model';

/**
 * The admin page (issue 24 §6), server-rendered, behind the admin guard and the read-only gate
 * registered before it:
 *
 * - `GET /admin`: usage per key and model (the ledger's report, read in-process, `start`/`end`
 *   as in `GET /admin/usage`), the keys, and — unless ADMIN_READONLY — a create form and rotate
 *   and revoke buttons.
 * - `POST /admin/page/keys`, `/admin/page/keys/:id/rotate`: a page with the new secret, shown
 *   this once and never put in a URL (hence no redirect); `/admin/page/keys/:id/revoke`: back to
 *   the page (303). Urlencoded forms with the session's CSRF token (csrf.ts), through the same
 *   checks and logs as the JSON API (key-actions.ts).
 */
export function registerAdminPage(app: GatewayApp, deps: AdminPageDeps): void {
  const render = async (
    c: Context<AppEnv>,
    extra: { notice?: string; error?: string; form?: CreateForm } = {},
    status: ContentfulStatusCode = 200,
  ) => {
    const [keys, usage, batches] = await Promise.all([
      deps.keyStore.list(),
      usageView(c, deps),
      // Redis trouble here leaves the section empty; the keys and usage above say it louder.
      openBatches(deps.redis, deps.keys).catch(() => []),
    ]);
    pageHeaders(c);
    return c.html(
      adminPage({
        keys,
        tiers: Object.keys(deps.tiers),
        readOnly: deps.adminReadonly,
        csrf: csrfTokenOf(c, deps.adminToken),
        usage,
        batches,
        ...extra,
      }),
      status,
    );
  };
  /** A refused form: the page again with the reason (a 4xx of the action); anything else is a 5xx. */
  const refused = (c: Context<AppEnv>, err: unknown, form?: CreateForm) => {
    if (!(err instanceof ApiError) || err.status >= 500) throw err;
    return render(c, { error: err.message, ...(form && { form }) }, err.status as ContentfulStatusCode);
  };
  const secret = (c: Context<AppEnv>, page: HtmlEscapedString | Promise<HtmlEscapedString>) => {
    pageHeaders(c);
    return c.html(page, 200);
  };

  app.get(PAGE_PATH, async (c) => {
    const revoked = c.req.query('revoked');
    if (revoked === undefined || ApiKeyStore.isSecret(revoked)) return render(c);
    // Only a key that is revoked: the query string is anybody's to write.
    const record = await deps.keyStore.get(revoked).catch(() => undefined);
    return render(c, record?.revoked ? { notice: `Key ${record.id} (user ${record.userId}) revoked.` } : {});
  });
  app.get(`${PAGE_PATH}/`, (c) => c.redirect(PAGE_PATH, 301));

  app.post(FORM_PATHS.create, async (c) => {
    const form = createFormOf(await readCheckedForm(c, deps.adminToken));
    try {
      return secret(c, secretPage(await createKey(deps, c.get('log'), createRequestOf(form))));
    } catch (err) {
      return refused(c, err, form);
    }
  });
  app.post(`${FORM_PATHS.create}/:id/rotate`, async (c) => {
    const form = await readCheckedForm(c, deps.adminToken);
    try {
      const { created, previousValidUntil } = await rotateKey(
        deps,
        c.get('log'),
        c.req.param('id'),
        rotateRequestOf(form),
      );
      return secret(c, secretPage(created, previousValidUntil));
    } catch (err) {
      return refused(c, err);
    }
  });
  app.post(`${FORM_PATHS.create}/:id/revoke`, async (c) => {
    await readCheckedForm(c, deps.adminToken);
    try {
      const revoked = await revokeKey(deps, c.get('log'), c.req.param('id'));
      return c.redirect(`${PAGE_PATH}?revoked=${encodeURIComponent(revoked.id)}`, 303);
    } catch (err) {
      return refused(c, err);
    }
  });
}

/** The usage section's report: its range from the query string, or the default 30 days. */
async function usageView(c: Context<AppEnv>, deps: AdminPageDeps): Promise<UsageView> {
  const rules = { admin: true, retentionDays: deps.usage.retentionDays };
  const priced = deps.usage.prices !== undefined;
  const asked = { start: c.req.query('start') || undefined, end: c.req.query('end') || undefined };
  let query: ReturnType<typeof parseUsageQuery>;
  let error: string | undefined;
  try {
    query = parseUsageQuery({ ...asked, group_by: USAGE_GROUP_BY }, rules);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    error = err.message;
    query = parseUsageQuery({ group_by: USAGE_GROUP_BY }, rules);
  }
  try {
    const report = await deps.usage.report(query, 'all');
    return { start: query.start, end: query.end, report, priced, ...(error && { error }) };
  } catch (err) {
    c.get('log').warn({ err: (err as Error).message }, 'usage_read_failed');
    return {
      start: query.start,
      end: query.end,
      priced,
      error: 'The usage ledger is unavailable; reload shortly.',
    };
  }
}
