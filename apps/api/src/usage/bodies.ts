import { USAGE_OUTCOMES } from '@llmgw/redis';
import { z } from 'zod';

/**
 * The usage answers (`GET /v1/usage`, `GET /admin/usage`; report.ts builds them) as zod schemas,
 * for the OpenAPI document and the type checker.
 */

/** What a report can be grouped by: `user` is the admin's only (a caller's usage is all theirs). */
export const USAGE_DIMENSIONS = ['day', 'user', 'key', 'model', 'outcome'] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

const cost = (what: string) =>
  z
    .number()
    .nullable()
    .optional()
    .meta({ description: `${what}, USD (PRICES_JSON); null when a model of the row has no price` });

/** One row: the value of each grouped dimension, and the counts of the jobs in it. */
export const UsageRow = z
  .object({
    day: z.string().optional().meta({ description: 'UTC day, YYYY-MM-DD (group_by day)' }),
    user: z.string().optional().meta({ description: 'the user (admin, group_by user)' }),
    key: z
      .string()
      .nullable()
      .optional()
      .meta({ description: 'the API key id (group_by key); null: no key (AUTH_MODE=trusted_headers)' }),
    model: z.string().optional(),
    outcome: z.enum(USAGE_OUTCOMES).optional(),
    requests: z.number().int().meta({ description: 'jobs that ended, whatever their outcome' }),
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    total_tokens: z.number().int(),
    input_cost_usd: cost('prompt tokens × the model’s input price'),
    output_cost_usd: cost('completion tokens × the model’s output price'),
    cost_usd: cost('input + output cost'),
  })
  .meta({ id: 'UsageRow' });
export type UsageRow = z.infer<typeof UsageRow>;

export const UsageReport = z
  .object({
    object: z.literal('usage'),
    start: z.string().meta({ description: 'first UTC day, YYYY-MM-DD' }),
    end: z.string().meta({ description: 'last UTC day, YYYY-MM-DD (included)' }),
    group_by: z.array(z.enum(USAGE_DIMENSIONS)),
    data: z.array(UsageRow),
    /** The sum of every row: no dimension. */
    total: UsageRow,
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.infer<typeof UsageReport>;
