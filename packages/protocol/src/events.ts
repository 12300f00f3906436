import { z } from 'zod';
import type { Delta } from './deltas.ts';

/**
 * Events a worker publishes on a job's reply channel (Redis pub/sub), demultiplexed by the api
 * by job id. One compact JSON object per message. `seq` counts from 0 within one attempt;
 * `attempt` changes when BullMQ re-runs a job (stalled worker), so the api can tell a restart
 * from a duplicate.
 */
export const Usage = z.object({ promptTokens: z.number(), completionTokens: z.number() });
export type Usage = z.infer<typeof Usage>;

export const ErrorType = z.enum([
  'backend_unavailable',
  'backend_timeout',
  'backend_rate_limited',
  'backend_bad_request',
  'backend_error',
  'invalid_job',
  'cancelled',
  'worker_shutdown',
  'worker_lost',
  'queue_timeout',
  'shutting_down',
  'internal_error',
]);
export type ErrorType = z.infer<typeof ErrorType>;

const base = { id: z.string(), seq: z.number().int().nonnegative(), attempt: z.number().int() };

export const StartedEvent = z.object({ ...base, type: z.literal('started'), worker: z.string() });
/**
 * `d`: the generation's typed deltas in order (several when publishing coalesced them; neighbours
 * of one kind are merged). Not validated on the hot path (see decodeEvent).
 */
export const DeltaEvent = z.object({ ...base, type: z.literal('delta'), d: z.array(z.custom<Delta>()) });
export const HeartbeatEvent = z.object({ ...base, type: z.literal('heartbeat') });
export const DoneEvent = z.object({
  ...base,
  type: z.literal('done'),
  /** As the backend gave it, in OpenAI's vocabulary: stop | length | tool_calls | content_filter. */
  finishReason: z.string(),
  /** The stop sequence that ended the answer, when the backend says (vLLM `stop_reason`). */
  stopSequence: z.string().optional(),
  usage: Usage,
  /** Backend time to first token, ms (for Server-Timing). */
  ttftMs: z.number().optional(),
  /** Backend time for the whole generation, ms (gateway overhead = total − queue − this). */
  genMs: z.number().optional(),
});
export const ErrorEvent = z.object({
  ...base,
  type: z.literal('error'),
  error: ErrorType,
  message: z.string(),
  /** Whatever was generated before the error, for quota settlement. */
  usage: Usage.optional(),
  /**
   * Written by the gateway itself, not a worker (the api gave up: deadline, job lost, cancelled
   * by its owner): it ends the stream whatever attempt is running.
   */
  gateway: z.literal(true).optional(),
});

/**
 * The backend failed before anything was published for this attempt: the job goes back to the
 * queue for another try (another worker, preferably), and its client waits for a later first
 * token. The next attempt's events carry a higher `attempt`.
 */
export const RequeuedEvent = z.object({
  ...base,
  type: z.literal('requeued'),
  error: ErrorType,
  message: z.string(),
});

/**
 * Queue position of a job still waiting (1 = next to start). Produced by the api itself from
 * Redis, not published by workers: a waiting job has no worker yet.
 */
export const QueuedEvent = z.object({ ...base, type: z.literal('queued'), position: z.number().int() });

export const JobEvent = z.discriminatedUnion('type', [
  QueuedEvent,
  StartedEvent,
  DeltaEvent,
  HeartbeatEvent,
  RequeuedEvent,
  DoneEvent,
  ErrorEvent,
]);
export type JobEvent = z.infer<typeof JobEvent>;
export type StartedEvent = z.infer<typeof StartedEvent>;
export type QueuedEvent = z.infer<typeof QueuedEvent>;
export type DeltaEvent = z.infer<typeof DeltaEvent>;
export type DoneEvent = z.infer<typeof DoneEvent>;
export type ErrorEvent = z.infer<typeof ErrorEvent>;
export type RequeuedEvent = z.infer<typeof RequeuedEvent>;

export function encodeEvent(event: JobEvent): string {
  return JSON.stringify(event);
}

/**
 * The api decodes every message of its reply channel on the hot path. The events come from our
 * own workers over our own Redis, so a full zod parse per token would be waste: check the
 * discriminant and the routing fields, and leave the rest to the TypeScript type.
 * Returns undefined for anything that is not an event.
 */
export function decodeEvent(raw: string): JobEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || typeof v.seq !== 'number' || typeof v.type !== 'string') return undefined;
  switch (v.type) {
    case 'delta':
      return Array.isArray(v.d) ? (v as JobEvent) : undefined;
    case 'started':
    case 'heartbeat':
    case 'requeued':
    case 'done':
    case 'error':
      return v as JobEvent;
    default:
      return undefined;
  }
}

/** Control messages every worker receives (one channel); only the worker owning the job acts. */
export const ControlMessage = z.object({ type: z.literal('cancel'), id: z.string(), reason: z.string() });
export type ControlMessage = z.infer<typeof ControlMessage>;
