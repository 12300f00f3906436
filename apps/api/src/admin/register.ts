import type { Logger } from '@llmgw/observability';
import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { GatewayApp } from '../hono-app.ts';
import type { Dispatcher } from '../jobs/dispatcher.ts';
import type { ModelRegistry } from '../models/registry.ts';
import { mountBullBoard } from './bull-board.ts';
import { registerAdminLogin } from './login.ts';
import { LoginThrottle } from './login-throttle.ts';
import { registerAdminQueues } from './queue-routes.ts';
import { readOnlyAdmin } from './read-only.ts';
import { adminGuard } from './session.ts';

export interface AdminDeps {
  adminToken: string;
  /** ADMIN_READONLY: every mutating /admin request answers 403, the board is read-only. */
  adminReadonly: boolean;
  models: ModelRegistry;
  dispatcher: Dispatcher;
  log: Logger;
  /** The login throttle's counters. */
  redis: Redis;
  keys: Keys;
  /** TRUST_PROXY: the login throttle takes the client address from X-Forwarded-For. */
  trustProxy: boolean;
}

/**
 * The admin surface's front, in this order: the login page (the only open route), the guard
 * (session cookie or Bearer token) on everything else under /admin, the read-only gate, then the
 * queue API and Bull Board. Routes registered after this (e.g. /admin/keys) sit behind the same.
 */
export function registerAdmin(app: GatewayApp, deps: AdminDeps): void {
  registerAdminLogin(app, {
    token: deps.adminToken,
    throttle: new LoginThrottle(deps.redis, deps.keys),
    trustProxy: deps.trustProxy,
  });
  app.use('/admin/*', adminGuard({ token: deps.adminToken }));
  if (deps.adminReadonly) app.use('/admin/*', readOnlyAdmin());
  registerAdminQueues(app, deps);
  mountBullBoard(app, { ...deps, readOnly: deps.adminReadonly });
}
