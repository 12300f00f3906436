import { z } from 'zod';
import type { Principal } from '../context.ts';

/**
 * What `/v1/batches` takes and answers, in OpenAI's shapes (the openai SDKs' `BatchCreateParams`,
 * `Batch` and cursor page), as the OpenAPI document states them.
 */

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** OpenAI's metadata: at most 16 pairs, keys up to 64 characters, values up to 512. */
const Metadata = z
  .record(z.string().max(64, 'metadata: a key is at most 64 characters'), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, 'metadata: at most 16 pairs');

export const BatchCreateRequest = z
  .object({
    input_file_id: z.string().min(1).max(64),
    // input.ts's BATCH_ENDPOINTS (not imported: that module imports the routes).
    endpoint: z.enum(['/v1/chat/completions', '/v1/completions'], {
      error: 'must be one of /v1/chat/completions, /v1/completions',
    }),
    completion_window: z.literal('24h', { error: "must be '24h'" }),
    metadata: Metadata.nullable().optional(),
  })
  .meta({ id: 'BatchCreateRequest' });
export type BatchCreateRequest = z.infer<typeof BatchCreateRequest>;

const unixSeconds = z.number().int().nullable().meta({ description: 'Unix time, seconds' });

const BatchError = z.object({
  code: z.string(),
  message: z.string(),
  param: z.string().nullable(),
  line: z.number().int().nullable(),
});

export const BatchObject = z
  .object({
    id: z.string().meta({ description: '`batch_…`' }),
    object: z.literal('batch'),
    endpoint: z.string(),
    errors: z.object({ object: z.literal('list'), data: z.array(BatchError) }).nullable(),
    input_file_id: z.string(),
    completion_window: z.string(),
    status: z.enum(BATCH_STATUSES),
    output_file_id: z.string().nullable(),
    error_file_id: z.string().nullable(),
    created_at: z.number().int(),
    in_progress_at: unixSeconds,
    expires_at: unixSeconds,
    finalizing_at: unixSeconds,
    completed_at: unixSeconds,
    failed_at: unixSeconds,
    expired_at: unixSeconds,
    cancelling_at: unixSeconds,
    cancelled_at: unixSeconds,
    request_counts: z.object({
      total: z.number().int(),
      completed: z.number().int(),
      failed: z.number().int(),
    }),
    metadata: z.record(z.string(), z.string()).nullable(),
  })
  .meta({ id: 'Batch' });
export type BatchObject = z.infer<typeof BatchObject>;

export const BatchList = z
  .object({
    object: z.literal('list'),
    data: z.array(BatchObject),
    has_more: z.boolean(),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
  })
  .meta({ id: 'BatchList' });

export const BATCH_ID_PATTERN = /^batch_[0-9a-z]{29}$/;

/** `GET /v1/batches`'s query, as OpenAI has it (newest first). */
export const BatchListQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be an integer from 1 to 100')
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, 'must be an integer from 1 to 100')
        .max(100, 'must be an integer from 1 to 100'),
    )
    .default(20),
  after: z.string().regex(BATCH_ID_PATTERN, 'must be a batch id').optional(),
});
export type BatchList = z.infer<typeof BatchList>;

/** What the routes need of the Batch API (batches.ts), stated here so the app's types need no route. */
export interface BatchesApi {
  create(principal: Principal, body: unknown): Promise<BatchObject>;
  retrieve(id: string, userId: string): Promise<BatchObject>;
  cancel(id: string, userId: string): Promise<BatchObject>;
  list(userId: string, query: Record<string, string>): Promise<BatchList>;
}
