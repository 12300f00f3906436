import type { GatewayApp } from '../hono-app.ts';
import { type UsageDeps, usageAnswer } from '../routes/usage.ts';

/**
 * `GET /admin/usage`: `GET /v1/usage` across every user and key, behind the admin guard; the
 * same query (`start`, `end`, `group_by`, which may name `user` too) and filters `user`, `key`,
 * `model`. The same body (the document's `UsageReport`), or CSV with `Accept: text/csv`.
 */
export function registerAdminUsage(app: GatewayApp, deps: UsageDeps): void {
  app.get('/admin/usage', (c) => usageAnswer(c, deps, 'all', true));
}
