import type { AppDeps, GatewayApp } from '../app.ts';

/** `GET /v1/models`: the models that have at least one live worker right now. */
export function registerModels(app: GatewayApp, deps: AppDeps): void {
  app.get('/v1/models', async (c) => {
    const snap = await deps.models.snapshot();
    const data = [...snap.live.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, workers]) => ({
        id,
        object: 'model',
        created: Math.floor(Math.min(...workers.map((w) => w.startedAt)) / 1000),
        owned_by: 'llm-gateway',
      }));
    return c.json({ object: 'list', data });
  });
}
