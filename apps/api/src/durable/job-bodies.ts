import { z } from 'zod';
import { OpenAIUsage } from '../wire/frames.ts';
import { AnswerBody } from '../wire/rendition.ts';

/**
 * The `/v1/jobs` answers (jobs.ts builds them) as zod schemas, for the OpenAPI document and the
 * type checker: what a job's status, list row and cancel say.
 */
const JobState = z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);

/** `GET /v1/jobs` rows. */
export const JobSummary = z
  .object({
    id: z.string(),
    object: z.literal('job'),
    status: JobState,
    model: z.string(),
    created_at: z.number().int(),
    async: z.boolean(),
  })
  .meta({ id: 'JobSummary' });

/** `GET /v1/jobs/{id}`: where it stands; once completed, the body a non-streaming request gets. */
export const JobStatusBody = JobSummary.extend({
  /** The admin's view (`/admin/jobs/{id}`) only. */
  user_id: z.string().optional(),
  /** While queued: its place in its model's queue (null once it cannot be read). */
  position: z.number().int().nullable().optional(),
  /** Once completed: the answer (null when its log was trimmed, JOB_LOG_MAX_EVENTS). */
  result: AnswerBody.nullable().optional(),
  usage: OpenAIUsage.optional(),
  timings: z.object({ backend_ttft_ms: z.number().nullable(), backend_ms: z.number().nullable() }).optional(),
  error: z.object({ type: z.string(), message: z.string() }).optional(),
}).meta({ id: 'JobStatus' });

export const JobList = z
  .object({ object: z.literal('list'), data: z.array(JobSummary) })
  .meta({ id: 'JobList' });

/** `POST /v1/jobs/{id}/cancel`: the job's state after it. */
export const JobCancelled = z
  .object({ id: z.string(), object: z.literal('job'), status: JobState })
  .meta({ id: 'JobCancelResult' });

/** 202 for `Prefer: respond-async`: queued, at its position. */
export const JobAccepted = z
  .object({
    id: z.string(),
    object: z.literal('job'),
    status: z.literal('queued'),
    position: z.number().int(),
  })
  .meta({ id: 'JobAccepted' });
