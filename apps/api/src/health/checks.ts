import { type BackendHealthBody, BreakerState, backendHealthBody, type WorkerInfo } from '@llmgw/protocol';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from '../queue/dispatcher.ts';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthDeps {
  redis: Redis;
  models: ModelRegistry;
  dispatcher: Dispatcher;
  /** Every check gives up after this long: probes must answer fast even while Redis hangs. */
  timeoutMs: number;
  /** Not ready once every model's waiting depth reached this (READY_MAX_WAITING). */
  readyMaxWaiting: number;
  isShuttingDown(): boolean;
}

/** `/health`'s body; the type is the schema's, so the OpenAPI document states what is sent. */
export const HealthReport = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    checks: z.object({
      redis: z.object({
        status: z.enum(['ok', 'error']),
        latency_ms: z.number().optional(),
        error: z.string().optional(),
      }),
      models: z.record(
        z.string(),
        z.object({
          status: z.enum(['ok', 'degraded', 'unavailable']),
          workers: z.array(
            z.object({
              instance: z.string(),
              busy: z.number(),
              concurrency: z.number(),
              backend: z.object({
                status: z.enum(['ok', 'error', 'unknown']),
                latency_ms: z.number().optional(),
                detail: z.string().optional(),
                checked_at: z.number(),
              }) satisfies z.ZodType<BackendHealthBody>,
              /** Set while this worker's circuit breaker for the model is open: it takes no jobs. */
              breaker: BreakerState.optional(),
            }),
          ),
          queue_depth: z.number().optional(),
        }),
      ),
    }),
    queue_depth: z.number(),
    shutting_down: z.boolean(),
    timestamp: z.number(),
  })
  .meta({ id: 'HealthReport' });
export type HealthReport = z.infer<typeof HealthReport>;

/** `/ready`'s body. */
export const ReadyReport = z
  .object({
    ready: z.boolean(),
    reason: z.enum(['shutting_down', 'redis_unreachable', 'queue_full']).optional(),
    queue_depth: z.number().optional(),
  })
  .meta({ id: 'ReadyReport' });
export type ReadyReport = z.infer<typeof ReadyReport>;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The deep check behind `/health`:
 * - unhealthy: Redis unreachable, or no model has a live worker whose backend answers;
 * - degraded: some model has no live worker, or some worker cannot reach its backend;
 * - healthy: otherwise.
 */
export async function checkHealth(deps: HealthDeps): Promise<HealthReport> {
  const timestamp = Date.now();
  const report: HealthReport = {
    status: 'healthy',
    checks: { redis: { status: 'ok' }, models: {} },
    queue_depth: 0,
    shutting_down: deps.isShuttingDown(),
    timestamp,
  };
  const started = performance.now();
  try {
    await withTimeout(deps.redis.ping(), deps.timeoutMs, 'redis ping');
    report.checks.redis.latency_ms = Math.round((performance.now() - started) * 100) / 100;
  } catch (err) {
    report.checks.redis = { status: 'error', error: (err as Error).message };
    report.status = 'unhealthy';
    return report;
  }
  try {
    const snap = await withTimeout(deps.models.snapshot(), deps.timeoutMs, 'worker registry');
    const models = [...snap.known].sort();
    const depths = await withTimeout(
      Promise.all(models.map((m) => deps.dispatcher.waiting(m))),
      deps.timeoutMs,
      'queue depth',
    );
    let anyServing = false;
    let anyProblem = false;
    models.forEach((model, i) => {
      const workers = snap.live.get(model) ?? [];
      const breakerOf = (w: WorkerInfo) =>
        w.breakers && Object.hasOwn(w.breakers, model) ? w.breakers[model] : undefined;
      // A worker serves the model if its backend answers and its breaker for it is closed.
      const backendsOk = workers.filter((w) => w.backend.status !== 'error' && breakerOf(w) === undefined);
      const status =
        workers.length === 0 ? 'unavailable' : backendsOk.length < workers.length ? 'degraded' : 'ok';
      if (backendsOk.length > 0) anyServing = true;
      if (status !== 'ok') anyProblem = true;
      report.queue_depth += depths[i] ?? 0;
      report.checks.models[model] = {
        status,
        queue_depth: depths[i],
        workers: workers.map((w) => ({
          instance: w.instanceId,
          busy: w.busy,
          concurrency: w.concurrency,
          backend: backendHealthBody(w.backend),
          ...(breakerOf(w) && { breaker: breakerOf(w) }),
        })),
      };
    });
    report.status = !anyServing ? 'unhealthy' : anyProblem ? 'degraded' : 'healthy';
  } catch (err) {
    report.checks.redis = { status: 'error', error: (err as Error).message };
    report.status = 'unhealthy';
  }
  return report;
}

/**
 * `/ready`: may this replica take traffic now? Every replica reads the same queues, so a full
 * queue takes all of them out at once, leaving clients a balancer's bare error instead of our
 * 503 with Retry-After: it only counts when no model can admit anything, i.e. every model's depth
 * reached READY_MAX_WAITING (by default the highest tier's shed point, where every tier is refused).
 */
export async function checkReady(deps: HealthDeps): Promise<ReadyReport> {
  if (deps.isShuttingDown()) return { ready: false, reason: 'shutting_down' };
  try {
    const snap = await withTimeout(deps.models.snapshot(), deps.timeoutMs, 'worker registry');
    const depths = await withTimeout(
      Promise.all([...snap.known].map((m) => deps.dispatcher.waiting(m))),
      deps.timeoutMs,
      'queue depth',
    );
    const queue_depth = depths.reduce((a, b) => a + b, 0);
    if (depths.length > 0 && depths.every((d) => d >= deps.readyMaxWaiting))
      return { ready: false, reason: 'queue_full', queue_depth };
    return { ready: true, queue_depth };
  } catch {
    return { ready: false, reason: 'redis_unreachable' };
  }
}
