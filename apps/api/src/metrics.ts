import {
  Counter,
  createRegistry,
  GAP_BUCKETS,
  Gauge,
  Histogram,
  LATENCY_BUCKETS,
  type Registry,
} from '@llmgw/observability';

/**
 * The api's metrics: what clients experience (README lists every name and label). Token counts
 * come from the backend's usage as reported at the end of each job.
 */
export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  httpDuration: Histogram<'route' | 'method' | 'status'>;
  tokens: Counter<'model' | 'type'>;
  ttft: Histogram<'model'>;
  interToken: Histogram<'model'>;
  e2e: Histogram<'model'>;
  queueWait: Histogram<'model'>;
  errors: Counter<'model' | 'error_type'>;
  activeStreams: Gauge;
  rateLimited: Counter<'tier' | 'limit'>;
  admissionRejected: Counter<'model' | 'reason' | 'tier'>;
  queueDepth: Gauge<'model'>;
  /** Batch requests waiting in each model's batch queue (the idle-slot lane), read at scrape time. */
  batchQueueDepth: Gauge<'model'>;
  /** Batches by the status this replica moved them to (in_progress, failed, completed, …). */
  batches: Counter<'status'>;
  /**
   * The `model` label for a model named by a client: itself if a worker ever registered it,
   * else {@link UNKNOWN_MODEL}. Every `model` label set from request input goes through this.
   */
  modelLabel(model: string): string;
}

/**
 * The label of every model no worker registered. A label value per client-chosen name would let
 * any key holder grow /metrics without bound (series never expire): 290 requests naming 10 KB
 * models took it from 77 KB to 3 MB.
 */
export const UNKNOWN_MODEL = 'unknown';

/**
 * `queueDepths` is read from Redis at every scrape, so all replicas report the same depth.
 * `isKnownModel` answers from the model registry's last snapshot (synchronously: it runs on
 * every observation).
 */
export function createApiMetrics(
  queueDepths: () => Promise<Map<string, number>>,
  isKnownModel: (model: string) => boolean,
  batchQueueDepths: () => Promise<Map<string, number>> = async () => new Map(),
): ApiMetrics {
  const registry = createRegistry();
  const r = [registry];
  const metrics: ApiMetrics = {
    registry,
    modelLabel: (model) => (isKnownModel(model) ? model : UNKNOWN_MODEL),
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: r,
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration until the response ended (the whole stream for SSE)',
      labelNames: ['route', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    tokens: new Counter({
      name: 'llm_tokens_total',
      help: 'Tokens by model and type (input = prompt, output = completion), from backend usage',
      labelNames: ['model', 'type'],
      registers: r,
    }),
    ttft: new Histogram({
      name: 'llm_latency_seconds',
      help: 'Time to first token as the client sees it: request received to first token sent (queue wait included)',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    interToken: new Histogram({
      name: 'llm_inter_token_latency_seconds',
      help: 'Gap between consecutive token writes to a client',
      labelNames: ['model'],
      buckets: GAP_BUCKETS,
      registers: r,
    }),
    e2e: new Histogram({
      name: 'llm_e2e_latency_seconds',
      help: 'Request received to last token sent (completed generations)',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    queueWait: new Histogram({
      name: 'llm_queue_wait_seconds',
      help: 'Enqueued to started on a worker',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    errors: new Counter({
      name: 'llm_errors_total',
      help: 'Failed generations by model and error type (backend_*, queue_timeout, worker_lost, …)',
      labelNames: ['model', 'error_type'],
      registers: r,
    }),
    activeStreams: new Gauge({
      name: 'llm_active_streams',
      help: 'SSE streams open on this api process',
      registers: r,
    }),
    rateLimited: new Counter({
      name: 'llm_rate_limit_rejections_total',
      help: 'Requests refused with 429, by tier and limit (requests = per-minute rate, tokens = daily quota, concurrency = jobs in flight per user)',
      labelNames: ['tier', 'limit'],
      registers: r,
    }),
    admissionRejected: new Counter({
      name: 'llm_admission_rejections_total',
      help: 'Requests refused before the queue, by model, reason (server_overloaded, model_unavailable, …) and tier (server_overloaded: the tier shed)',
      labelNames: ['model', 'reason', 'tier'],
      registers: r,
    }),
    queueDepth: new Gauge({
      name: 'llm_queue_depth',
      help: 'Jobs waiting to start, per model, read from Redis at scrape time',
      labelNames: ['model'],
      registers: r,
      async collect() {
        try {
          const depths = await queueDepths();
          this.reset();
          for (const [model, depth] of depths) this.set({ model }, depth);
        } catch {
          // Redis down: keep the last values rather than fail the scrape.
        }
      },
    }),
    batchQueueDepth: new Gauge({
      name: 'llm_batch_queue_depth',
      help: 'Batch requests waiting in each model’s batch queue (run only in idle slots), read from Redis at scrape time',
      labelNames: ['model'],
      registers: r,
      async collect() {
        try {
          const depths = await batchQueueDepths();
          this.reset();
          for (const [model, depth] of depths) this.set({ model }, depth);
        } catch {
          // Redis down: keep the last values rather than fail the scrape.
        }
      },
    }),
    batches: new Counter({
      name: 'llm_batches_total',
      help: 'Batches moved to a status by this api replica: in_progress (created and queued), failed (its input refused), completed, cancelled, expired',
      labelNames: ['status'],
      registers: r,
    }),
  };
  // Every status from the start: a rate() over a series that appears with its first batch misses it.
  for (const status of ['in_progress', 'failed', 'cancelling', 'completed', 'cancelled', 'expired'])
    metrics.batches.inc({ status }, 0);
  return metrics;
}
