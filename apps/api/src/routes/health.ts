import type { AppDeps, GatewayApp } from '../app.ts';
import { checkHealth, checkReady } from '../health/checks.ts';

/** `/health` (deep: 200 healthy/degraded, 503 unhealthy) and `/ready` (200 or 503). */
export function registerHealth(app: GatewayApp, deps: AppDeps): void {
  app.get('/health', async (c) => {
    const report = await checkHealth(deps.health);
    return c.json(report, report.status === 'unhealthy' ? 503 : 200);
  });
  app.get('/ready', async (c) => {
    const report = await checkReady(deps.health);
    return c.json(report, report.ready ? 200 : 503);
  });
}
