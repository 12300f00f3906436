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

export const WorkerInfo = z.object({
  instanceId: z.string(),
  models: z.array(z.string()),
  concurrency: z.number(),
  provider: z.string(),
  /** Jobs running right now in this worker (all models). */
  busy: z.number(),
  backend: BackendHealth,
  startedAt: z.number(),
  heartbeatAt: z.number(),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;
