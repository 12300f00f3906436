import type { WorkerInfo } from '@llmgw/protocol';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { API_KEY_SECURITY, errorResponses, GUARDED, json } from '../openapi/describe.ts';

export const ModelObject = z
  .object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() })
  .meta({ id: 'Model' });
export const ModelList = z
  .object({ object: z.literal('list'), data: z.array(ModelObject) })
  .meta({ id: 'ModelList' });

const modelObject = (id: string, workers: WorkerInfo[]): z.infer<typeof ModelObject> => ({
  id,
  object: 'model' as const,
  created: Math.floor(Math.min(...workers.map((w) => w.startedAt)) / 1000),
  owned_by: 'llm-gateway',
});

/**
 * `GET /v1/models`: the models that have at least one live worker right now.
 * `GET /v1/models/{id}`: one of them (`client.models.retrieve()`); 404 `model_not_found` otherwise.
 * A key with a `models` allowlist sees only those (another model is 404 here, as OpenAI answers
 * for a model the key has no access to; a generation naming it gets 403 `model_not_allowed`).
 */
export function registerModels(app: GatewayApp, deps: Pick<AppDeps, 'models'>): void {
  const listDoc = describeRoute({
    tags: ['models'],
    summary: 'The models that have at least one live worker right now',
    security: API_KEY_SECURITY,
    responses: {
      200: { description: 'the models', content: json(ModelList) },
      ...errorResponses('openai', GUARDED),
    },
  });
  app.get('/v1/models', listDoc, async (c) => {
    const snap = await deps.models.snapshot().catch(registryDown);
    // A key with a model allowlist sees only those models.
    const allowed = c.get('principal')?.grant?.models;
    const data = [...snap.live.entries()]
      .filter(([id]) => !allowed || allowed.includes(id))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, workers]) => modelObject(id, workers));
    return c.json({ object: 'list' as const, data } satisfies z.infer<typeof ModelList>);
  });
  // Model ids may contain slashes (`meta-llama/Llama-3.1-8B-Instruct`): match the rest of the path.
  const oneDoc = describeRoute({
    tags: ['models'],
    summary: 'One served model (client.models.retrieve()); the id may contain slashes',
    security: API_KEY_SECURITY,
    responses: {
      200: { description: 'the model', content: json(ModelObject) },
      ...errorResponses('openai', [404, ...GUARDED]),
    },
  });
  app.get('/v1/models/:id{.+}', oneDoc, async (c) => {
    const id = c.req.param('id');
    const allowed = c.get('principal')?.grant?.models;
    const workers =
      allowed && !allowed.includes(id)
        ? undefined
        : (await deps.models.snapshot().catch(registryDown)).live.get(id);
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
