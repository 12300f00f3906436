import type { WorkerInfo } from '@llmgw/protocol';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';

const modelObject = (id: string, workers: WorkerInfo[]) => ({
  id,
  object: 'model',
  created: Math.floor(Math.min(...workers.map((w) => w.startedAt)) / 1000),
  owned_by: 'llm-gateway',
});

/**
 * `GET /v1/models`: the models that have at least one live worker right now.
 * `GET /v1/models/{id}`: one of them (`client.models.retrieve()`); 404 `model_not_found` otherwise.
 */
export function registerModels(app: GatewayApp, deps: Pick<AppDeps, 'models'>): void {
  app.get('/v1/models', async (c) => {
    const snap = await deps.models.snapshot().catch(registryDown);
    const data = [...snap.live.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, workers]) => modelObject(id, workers));
    return c.json({ object: 'list', data });
  });
  // Model ids may contain slashes (`meta-llama/Llama-3.1-8B-Instruct`): match the rest of the path.
  app.get('/v1/models/:id{.+}', async (c) => {
    const id = c.req.param('id');
    const workers = (await deps.models.snapshot().catch(registryDown)).live.get(id);
    if (!workers)
      throw new ApiError('model_not_found', `The model '${clip(id)}' does not exist`, { param: 'model' });
    return c.json(modelObject(id, workers));
  });
}

/** Redis down or not answering (REDIS_COMMAND_TIMEOUT_MS): 503 as on every request path, not a 500. */
function registryDown(): never {
  throw new ApiError('service_unavailable', 'the model registry is unavailable; retry shortly', {
    headers: { 'Retry-After': '1' },
  });
}
