import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { GatewayApp } from '../hono-app.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from '../queue/dispatcher.ts';

export interface QueueStats {
  model: string;
  /** BullMQ queue name (what Bull Board lists). */
  queue: string;
  paused: boolean;
  /** Waiting without a priority (BullMQ `wait`). */
  waiting: number;
  /** Waiting with a priority (every tier's jobs have one). */
  prioritized: number;
  active: number;
  delayed: number;
  /** Finished jobs still kept (bounded by count and age, see queue/dispatcher.ts). */
  completed: number;
  failed: number;
  live_workers: number;
  workers: { instance_id: string; concurrency: number; busy: number; heartbeat_at: number }[];
}

export interface AdminQueueDeps {
  models: ModelRegistry;
  dispatcher: Dispatcher;
}

/**
 * Queue administration, behind the admin guard:
 * - `GET /admin/queues/stats`: per model, job counts from Redis, the pause flag, live workers.
 * - `POST /admin/models/:model/pause` | `/resume`: BullMQ's global pause. Running jobs finish;
 *   waiting ones stay queued (until their queue deadline); new requests get 503 `model_paused`.
 *   A model name with `/` may be sent as is or as `%2F`.
 */
export function registerAdminQueues(app: GatewayApp, { models, dispatcher }: AdminQueueDeps): void {
  app.get('/admin/queues/stats', async (c) => {
    const snap = await models.snapshot().catch(unavailable);
    const data: QueueStats[] = await Promise.all(
      [...snap.known].sort().map(async (model) => {
        const q = dispatcher.queue(model);
        const [counts, paused] = await Promise.all([
          q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed'),
          q.isPaused(),
        ]).catch(unavailable);
        const live = snap.live.get(model) ?? [];
        return {
          model,
          queue: q.name,
          paused,
          waiting: counts.wait ?? 0,
          prioritized: counts.prioritized ?? 0,
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          completed: counts.completed ?? 0,
          failed: counts.failed ?? 0,
          live_workers: live.length,
          workers: live.map((w) => ({
            instance_id: w.instanceId,
            concurrency: w.concurrency,
            busy: w.busy,
            heartbeat_at: w.heartbeatAt,
          })),
        };
      }),
    );
    return c.json({ data });
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/admin/models/:model{.+}/${action}`, async (c) => {
      const model = c.req.param('model');
      const { known } = await models.snapshot().catch(unavailable);
      if (!known.has(model)) {
        throw new ApiError('model_not_found', `The model '${clip(model)}' does not exist`, {
          param: 'model',
        });
      }
      const paused = action === 'pause';
      await dispatcher.setPaused(model, paused).catch(unavailable);
      c.get('log').info({ model }, paused ? 'model_paused' : 'model_resumed');
      return c.json({ model, paused });
    });
  }
}

function unavailable(err: Error): never {
  throw new ApiError('service_unavailable', `Redis is unavailable: ${err.message}`, {
    headers: { 'Retry-After': '1' },
  });
}
