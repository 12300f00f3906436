import { z } from 'zod';

/**
 * What a worker says about itself in its heartbeat key, read by the api for `/v1/models` and
 * `/health`. The key expires when the worker stops refreshing it (crash, partition).
 */
export const BackendHealth = z.object({
  status: z.enum(['ok', 'error', 'unknown']),
  latencyMs: z.number().optional(),
  detail: z.string().optional(),
  checkedAt: z.number(),
});
export type BackendHealth = z.infer<typeof BackendHealth>;

/**
 * A worker's backend health as the HTTP surfaces show it (the api's and the worker's `/health`):
 * snake_case, like every JSON key they answer. The heartbeat key keeps the schema above, because
 * api and worker of different releases read each other's keys during a rolling upgrade.
 */
export interface BackendHealthBody {
  status: BackendHealth['status'];
  latency_ms?: number;
  detail?: string;
  checked_at: number;
}

export function backendHealthBody(h: BackendHealth): BackendHealthBody {
  return {
    status: h.status,
    ...(h.latencyMs !== undefined && { latency_ms: h.latencyMs }),
    ...(h.detail !== undefined && { detail: h.detail }),
    checked_at: h.checkedAt,
  };
}

/**
 * A model whose circuit breaker is not closed on this worker: it takes no jobs for it, and its
 * slots are out of the model's capacity. Closed breakers are not listed.
 */
export const BreakerState = z.object({
  state: z.enum(['open', 'half_open']),
  reason: z.string(),
  since: z.number(),
});
export type BreakerState = z.infer<typeof BreakerState>;

export const WorkerInfo = z.object({
  instanceId: z.string(),
  models: z.array(z.string()),
  concurrency: z.number(),
  provider: z.string(),
  /** Jobs running right now in this worker (all models). */
  busy: z.number(),
  backend: BackendHealth,
  /** Models whose breaker is open or half-open, with why (absent: all closed). */
  breakers: z.record(z.string(), BreakerState).optional(),
  startedAt: z.number(),
  heartbeatAt: z.number(),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;
