import type { Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import { BatchCreateRequest, BatchList, BatchObject } from '../batch/bodies.ts';
import type { AppEnv } from '../context.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import { API_KEY_SECURITY, errorResponses, GUARDED, json, jsonRequest } from '../openapi/describe.ts';

export type BatchesDeps = Pick<AppDeps, 'batches'>;

const batchId = { in: 'path' as const, name: 'id', required: true, schema: { type: 'string' as const } };

/**
 * `/v1/batches`, OpenAI's Batch API: create (from an uploaded `batch` file), retrieve, cancel,
 * list. The requests run on each model's batch queue, in idle worker slots only; the output and
 * error files are `/v1/files` files (purpose `batch_output`). Only the batch's user sees it.
 */
export function registerBatches(app: GatewayApp, deps: BatchesDeps): void {
  const principalOf = (c: Context<AppEnv>) => c.get('principal')!;

  const createDoc = describeRoute({
    tags: ['batches'],
    summary: 'Create a batch from an uploaded input file',
    description:
      'Every line of the file is checked first: a file with a bad line gives a batch with `status: "failed"` ' +
      'and the lines in `errors.data` (nothing runs); else every request is queued and the batch is `in_progress`.',
    security: API_KEY_SECURITY,
    requestBody: jsonRequest(BatchCreateRequest),
    responses: {
      200: { description: 'the batch', content: json(BatchObject) },
      ...errorResponses('openai', [400, 404, ...GUARDED]),
    },
  });
  app.post('/v1/batches', createDoc, async (c) => {
    const body = await readJsonBody(c, BatchCreateRequest);
    const batch = await deps.batches.create(principalOf(c), body);
    c.get('log').info(
      { batch_id: batch.id, status: batch.status, total: batch.request_counts.total },
      'batch_create',
    );
    return c.json(batch);
  });

  const listDoc = describeRoute({
    tags: ['batches'],
    summary: "The caller's batches, newest first (OpenAI's cursor page)",
    security: API_KEY_SECURITY,
    parameters: [
      {
        in: 'query',
        name: 'limit',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
      },
      {
        in: 'query',
        name: 'after',
        required: false,
        description: 'a batch id: the batches after it (the last id of the previous page)',
        schema: { type: 'string' },
      },
    ],
    responses: {
      200: { description: 'the batches', content: json(BatchList) },
      ...errorResponses('openai', [400, ...GUARDED]),
    },
  });
  app.get('/v1/batches', listDoc, async (c) =>
    c.json(await deps.batches.list(principalOf(c).userId, c.req.query())),
  );

  const retrieveDoc = describeRoute({
    tags: ['batches'],
    summary: 'The batch',
    security: API_KEY_SECURITY,
    parameters: [batchId],
    responses: {
      200: { description: 'the batch', content: json(BatchObject) },
      ...errorResponses('openai', [404, ...GUARDED]),
    },
  });
  app.get('/v1/batches/:id', retrieveDoc, async (c) =>
    c.json(await deps.batches.retrieve(c.req.param('id'), principalOf(c).userId)),
  );

  const cancelDoc = describeRoute({
    tags: ['batches'],
    summary: 'Cancel the batch: no new request starts; the running ones finish',
    description:
      '`cancelling` at once, `cancelled` once the running requests have ended, with the output of what completed. ' +
      'A batch already completed, failed or expired is 409.',
    security: API_KEY_SECURITY,
    parameters: [batchId],
    responses: {
      200: { description: 'the batch', content: json(BatchObject) },
      ...errorResponses('openai', [404, 409, ...GUARDED]),
    },
  });
  app.post('/v1/batches/:id/cancel', cancelDoc, async (c) =>
    c.json(await deps.batches.cancel(c.req.param('id'), principalOf(c).userId)),
  );
}
