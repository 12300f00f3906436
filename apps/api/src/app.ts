import type { Logger } from '@llmgw/observability';
import type { Keys } from '@llmgw/redis';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Redis } from 'ioredis';
import { registerAdmin } from './admin/register.ts';
import type { ApiKeyStore } from './auth/api-keys.ts';
import type { Tiers } from './auth/tiers.ts';
import { clip } from './clip.ts';
import type { AppEnv } from './context.ts';
import { ApiError } from './errors.ts';
import type { HealthDeps } from './health/checks.ts';
import type { ChatService } from './jobs/chat-service.ts';
import type { Dispatcher } from './jobs/dispatcher.ts';
import { allowedMethods } from './method-not-allowed.ts';
import type { ApiMetrics } from './metrics.ts';
import { type AuthMode, authenticate } from './middleware/authenticate.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestContext } from './middleware/request-context.ts';
import type { ModelRegistry } from './models/registry.ts';
import { errorBody, errorStyleFor } from './render-error.ts';
import { registerAdminKeys } from './routes/admin-keys.ts';
import { registerChat } from './routes/chat.ts';
import { registerCompletions } from './routes/completions.ts';
import { registerHealth } from './routes/health.ts';
import { registerMessages } from './routes/messages.ts';
import { registerModels } from './routes/models.ts';
import { registerOpenAIChat } from './routes/openai-chat.ts';

export interface AppDeps {
  log: Logger;
  chat: ChatService;
  models: ModelRegistry;
  health: HealthDeps;
  defaultModel: string;
  bodyLimitBytes: number;
  authMode: AuthMode;
  keyStore: ApiKeyStore;
  tiers: Tiers;
  /** For the rate limiter. */
  redis: Redis;
  keys: Keys;
  rateWindowMs: number;
  metrics: ApiMetrics;
  /** Unset: the /admin API is disabled (404). */
  adminToken: string | undefined;
  /** ADMIN_READONLY: the admin surface only reads (mutating requests 403, Bull Board read-only). */
  adminReadonly: boolean;
  /** The model queues (admin: stats, pause/resume, Bull Board). */
  dispatcher: Dispatcher;
  /** TRUST_PROXY: client addresses come from X-Forwarded-For (see client-address.ts). */
  trustProxy: boolean;
}

export type GatewayApp = Hono<AppEnv>;

/** Builds the HTTP app (what tests drive); main.ts wires real dependencies and starts it. */
export function createApp(deps: AppDeps): GatewayApp {
  const app = new Hono<AppEnv>();
  app.use(requestContext({ log: deps.log, metrics: deps.metrics }));
  app.use(
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        // The unread rest of the body makes this connection unusable: tell the client not to reuse it.
        throw new ApiError('payload_too_large', `request body exceeds ${deps.bodyLimitBytes} bytes`, {
          headers: { Connection: 'close' },
        });
      },
    }),
  );

  registerHealth(app, deps);
  // Scraped by Prometheus; not public (deploy/nginx.conf answers 404 for it).
  app.get('/metrics', async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }),
  );

  // Order matters: authenticate, then limit, then (in the handlers) validate the body, so a
  // flood of malformed requests still counts against its sender.
  const guard = [
    refuseWhileStopping(deps.health.isShuttingDown),
    authenticate({ mode: deps.authMode, store: deps.keyStore, tiers: deps.tiers }),
    rateLimit({
      redis: deps.redis,
      keys: deps.keys,
      tiers: deps.tiers,
      windowMs: deps.rateWindowMs,
      onReject: (tier) => deps.metrics.rateLimited.inc({ tier, limit: 'requests' }),
    }),
  ];
  app.use('/chat', ...guard);
  app.use('/v1/*', ...guard);
  if (deps.adminToken) {
    // Login page, guard (session cookie or Bearer), read-only gate, queue API, Bull Board.
    registerAdmin(app, { ...deps, adminToken: deps.adminToken });
    registerAdminKeys(app, deps);
  }
  registerChat(app, deps);
  registerOpenAIChat(app, deps);
  registerCompletions(app, deps);
  registerMessages(app, deps);
  registerModels(app, deps);

  const allowed = allowedMethods(app.routes);
  app.notFound((c) => {
    const allow = allowed(c.req.path);
    if (allow.length > 0 && !allow.includes(c.req.method)) {
      return renderError(
        c,
        new ApiError('method_not_allowed', `${c.req.method} is not allowed on ${clip(c.req.path)}`, {
          headers: { Allow: allow.join(', ') },
        }),
      );
    }
    return renderError(c, new ApiError('not_found', `no route for ${c.req.method} ${clip(c.req.path)}`));
  });
  app.onError((err, c) => {
    if (err instanceof ApiError) return renderError(c, err);
    c.var.log?.error({ err }, 'unhandled_error');
    return renderError(c, new ApiError('internal_error', 'internal error'));
  });
  return app;
}

/** During shutdown new work goes elsewhere: 503, and this connection is not reused. */
function refuseWhileStopping(isShuttingDown: () => boolean): MiddlewareHandler<AppEnv> {
  return async function refuseWhileStoppingMiddleware(_c, next) {
    if (isShuttingDown()) {
      throw new ApiError('shutting_down', 'this gateway instance is shutting down; retry', {
        headers: { 'Retry-After': '1', Connection: 'close' },
      });
    }
    await next();
  };
}

/** The one place an error response is built. */
function renderError(c: Context<AppEnv>, err: ApiError): Response {
  if (err.status >= 500) c.var.log?.warn({ code: err.code, err: err.message }, 'request_failed');
  else c.var.log?.info({ code: err.code, err: err.message }, 'request_rejected');
  const requestId = c.var.requestId ?? '';
  return c.json(errorBody(err, errorStyleFor(c.req.path), requestId), err.status as ContentfulStatusCode, {
    ...err.opts.headers,
    'X-Request-ID': requestId,
  });
}
