import { Hono, type MiddlewareHandler } from 'hono';
import { registerAdmin } from './admin/register.ts';
import type { AppEnv } from './context.ts';
import { ApiError, notFoundHandler, onErrorHandler } from './errors/index.ts';
import type { AppDeps, GatewayApp } from './hono-app.ts';
import { allowedMethods } from './method-not-allowed.ts';
import { authenticate } from './middleware/authenticate.ts';
import { bodyLimit } from './middleware/json-body.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestContext } from './middleware/request-context.ts';
import { requestSpan } from './middleware/request-span.ts';
import { registerBatches } from './routes/batches.ts';
import { registerChat } from './routes/chat.ts';
import { registerCompletions } from './routes/completions.ts';
import { FILES_PATH, registerFiles } from './routes/files.ts';
import { registerHealth } from './routes/health.ts';
import { registerJobs } from './routes/jobs.ts';
import { registerMessages } from './routes/messages.ts';
import { registerModels } from './routes/models.ts';
import { registerOpenAIChat } from './routes/openai-chat.ts';
import { registerOpenApi } from './routes/openapi.ts';
import { registerUsage } from './routes/usage.ts';

/** Builds the HTTP app (what tests drive); main.ts wires real dependencies and starts it. */
export function createApp(deps: AppDeps): GatewayApp {
  const app = new Hono<AppEnv>();
  app.use(requestContext({ log: deps.log, metrics: deps.metrics }));
  if (deps.tracing) app.use(requestSpan());
  // The upload of a batch input file has a limit of its own (BATCH_FILE_MAX_BYTES).
  app.use(bodyLimit(deps.bodyLimitBytes, { ownLimit: [FILES_PATH] }));

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
  const { adminToken } = deps;
  // Login page, guard (session cookie or Bearer), read-only gate, queue API, Bull Board, API keys.
  if (adminToken) registerAdmin(app, { ...deps, adminToken });
  registerChat(app, deps);
  registerOpenAIChat(app, deps);
  registerCompletions(app, deps);
  registerMessages(app, deps);
  registerModels(app, deps);
  registerJobs(app, deps);
  registerUsage(app, deps);
  registerFiles(app, deps);
  registerBatches(app, deps);
  // Public, no key: the document of the routes above (generated from them at its first request).
  registerOpenApi(app);

  app.notFound(notFoundHandler(allowedMethods(app.routes)));
  app.onError(onErrorHandler);
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
