import { ANY_OWNER } from '../durable/jobs.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { registerJobRoutes } from '../routes/jobs.ts';
import { mountBullBoard } from './bull-board.ts';
import { registerAdminKeys } from './key-routes.ts';
import { registerAdminLogin } from './login.ts';
import { LoginThrottle } from './login-throttle.ts';
import { registerAdminPage } from './page/routes.ts';
import { registerAdminQueues } from './queue-routes.ts';
import { readOnlyAdmin } from './read-only.ts';
import { adminGuard } from './session.ts';
import { registerAdminUsage } from './usage-routes.ts';

/** What the admin surface needs; registered only when ADMIN_TOKEN is set. */
export type AdminDeps = Pick<
  AppDeps,
  | 'adminReadonly'
  | 'models'
  | 'dispatcher'
  | 'log'
  | 'redis'
  | 'keys'
  | 'trustProxy'
  | 'keyStore'
  | 'tiers'
  | 'jobs'
  | 'metrics'
  | 'canceller'
  | 'usage'
> & { adminToken: string };

/**
 * The admin surface, in this order: the login page (the only open route), the guard (session
 * cookie or Bearer token) on everything else under /admin, the read-only gate, then the queue API,
 * Bull Board, the API key routes, everybody's usage and any user's jobs, all behind the guard.
 */
export function registerAdmin(app: GatewayApp, deps: AdminDeps): void {
  // One throttle for both ways of presenting ADMIN_TOKEN: the form and the Bearer header.
  const auth = {
    token: deps.adminToken,
    throttle: new LoginThrottle(deps.redis, deps.keys),
    trustProxy: deps.trustProxy,
  };
  registerAdminLogin(app, auth);
  app.use('/admin/*', adminGuard(auth));
  if (deps.adminReadonly) app.use('/admin/*', readOnlyAdmin());
  registerAdminQueues(app, deps);
  mountBullBoard(app, { ...deps, readOnly: deps.adminReadonly });
  registerAdminKeys(app, deps);
  registerAdminUsage(app, deps);
  // The page at /admin: keys and usage for a browser, through the same code as the two above.
  registerAdminPage(app, deps);
  // Any user's job: status, replay or follow, cancel (read-only admin: no cancel).
  registerJobRoutes(app, deps, '/admin/jobs', () => ANY_OWNER);
}
