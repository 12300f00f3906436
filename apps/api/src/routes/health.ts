import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { checkHealth, checkReady, HealthReport, ReadyReport } from '../health/checks.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { json } from '../openapi/describe.ts';

export const LiveReport = z
  .object({ status: z.literal('alive'), shutting_down: z.boolean() })
  .meta({ id: 'LiveReport' });
type LiveReport = z.infer<typeof LiveReport>;
/**
 * `/health` (deep: 200 healthy/degraded, 503 unhealthy), `/ready` (200 or 503) and `/livez`
 * (200 while the process serves HTTP). Liveness probes use /livez: restarting the api because
 * Redis or the GPUs are down would only add an outage of its own.
 */
export function registerHealth(app: GatewayApp, deps: Pick<AppDeps, 'health'>): void {
  const probe = (summary: string) => ({ tags: ['health'], summary, security: [] });
  const liveDoc = describeRoute({
    ...probe('Liveness: 200 while the process serves HTTP'),
    responses: { 200: { description: 'alive', content: json(LiveReport) } },
  });
  app.get('/livez', liveDoc, (c) =>
    c.json({ status: 'alive' as const, shutting_down: deps.health.isShuttingDown() } satisfies LiveReport),
  );
  const healthDoc = describeRoute({
    ...probe('Deep check: Redis, each model, each worker and its backend'),
    responses: {
      200: { description: 'healthy or degraded', content: json(HealthReport) },
      503: { description: 'unhealthy', content: json(HealthReport) },
    },
  });
  app.get('/health', healthDoc, async (c) => {
    const report = await checkHealth(deps.health);
    return c.json(report, report.status === 'unhealthy' ? 503 : 200);
  });
  const readyDoc = describeRoute({
    ...probe('Readiness: may this replica take traffic now'),
    responses: {
      200: { description: 'ready', content: json(ReadyReport) },
      503: {
        description: 'not ready: shutting down, Redis unreachable, or every queue full',
        content: json(ReadyReport),
      },
    },
  });
  app.get('/ready', readyDoc, async (c) => {
    const report = await checkReady(deps.health);
    return c.json(report, report.ready ? 200 : 503);
  });
}
