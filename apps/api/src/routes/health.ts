import { checkHealth, checkReady } from '../health/checks.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';

/**
 * `/health` (deep: 200 healthy/degraded, 503 unhealthy), `/ready` (200 or 503) and `/livez`
 * (200 while the process serves HTTP). Liveness probes use /livez: restarting the api because
 * Redis or the GPUs are down would only add an outage of its own.
 */
export function registerHealth(app: GatewayApp, deps: Pick<AppDeps, 'health'>): void {
  app.get('/livez', (c) => c.json({ status: 'alive', shutting_down: deps.health.isShuttingDown() }));
  app.get('/health', async (c) => {
    const report = await checkHealth(deps.health);
    return c.json(report, report.status === 'unhealthy' ? 503 : 200);
  });
  app.get('/ready', async (c) => {
    const report = await checkReady(deps.health);
    return c.json(report, report.ready ? 200 : 503);
  });
}
