import {
  Counter,
  createRegistry,
  Gauge,
  Histogram,
  LATENCY_BUCKETS,
  type Registry,
} from '@llmgw/observability';
import type { ErrorType } from '@llmgw/protocol';

export type JobOutcome = 'completed' | 'failed' | 'cancelled' | 'expired' | 'requeued';

/**
 * A worker's metrics, served on METRICS_PORT: its slots and what its backend does. Client-side
 * latencies and token counts are the api's (llm_latency_seconds, llm_tokens_total).
 */
export class WorkerMetrics {
  readonly registry: Registry = createRegistry();
  private busyCount = 0;
  private readonly r = [this.registry];
  readonly slots = new Gauge({
    name: 'llm_worker_slots',
    help: 'Concurrent generations this worker may run per model (WORKER_CONCURRENCY)',
    labelNames: ['model'],
    registers: this.r,
  });
  readonly busy = new Gauge({
    name: 'llm_worker_busy_slots',
    help: 'Generations running on this worker now',
    labelNames: ['model'],
    registers: this.r,
  });
  readonly jobs = new Counter({
    name: 'llm_worker_jobs_total',
    help: 'Jobs finished by this worker, by outcome (completed, failed, cancelled, expired, requeued)',
    labelNames: ['model', 'outcome'],
    registers: this.r,
  });
  readonly backendErrors = new Counter({
    name: 'llm_backend_errors_total',
    help: 'Backend failures by error type (backend_unavailable, backend_timeout, backend_rate_limited, …)',
    labelNames: ['model', 'error_type'],
    registers: this.r,
  });
  readonly backendTtft = new Histogram({
    name: 'llm_backend_ttft_seconds',
    help: "The backend's own time to first token, seen from the worker",
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: this.r,
  });
  readonly backendDuration = new Histogram({
    name: 'llm_backend_generation_seconds',
    help: 'Whole generation time at the backend',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: this.r,
  });
  readonly retries = new Counter({
    name: 'llm_backend_retries_total',
    help: 'Jobs put back on the queue after a backend failure before their first token (by error type)',
    labelNames: ['model', 'error_type'],
    registers: this.r,
  });
  readonly breakerOpen = new Gauge({
    name: 'llm_breaker_open',
    help: "1 while this worker's circuit breaker for the model is open or half-open (it takes no jobs)",
    labelNames: ['model'],
    registers: this.r,
  });
  readonly dropped = new Counter({
    name: 'llm_backend_dropped_total',
    help: 'Pieces of backend output the gateway does not relay (by field, e.g. delta.audio); should stay 0',
    labelNames: ['model', 'field'],
    registers: this.r,
  });
  readonly backendUp = new Gauge({
    name: 'llm_backend_up',
    help: "1 when the backend's health endpoint answered the last probe, 0 when not",
    registers: this.r,
  });
  readonly quotaSettleRetries = new Counter({
    name: 'llm_quota_settle_retries_total',
    help: 'Quota settlements tried again after Redis refused them (see quota-settler.ts); rising = Redis trouble',
    registers: this.r,
  });
  readonly usageRecordRetries = new Counter({
    name: 'llm_usage_record_retries_total',
    help: 'Usage ledger counts tried again after Redis refused them (recordUsageEventually); rising = Redis trouble',
    registers: this.r,
  });

  readonly batchRequests = new Counter({
    name: 'llm_batch_requests_total',
    help: 'Batch requests this worker ended, by outcome (completed, failed)',
    labelNames: ['model', 'outcome'],
    registers: this.r,
  });
  readonly batchLaneOpen = new Gauge({
    name: 'llm_batch_lane_open',
    help: '1 while this worker takes batch requests for the model (no interactive job waits), 0 while it holds them back',
    labelNames: ['model'],
    registers: this.r,
  });
  readonly batchSlots = new Gauge({
    name: 'llm_batch_slots',
    help: "Of this worker's slots per model, how many batch requests may use at once (BATCH_MAX_SLOTS_FRACTION)",
    labelNames: ['model'],
    registers: this.r,
  });

  constructor(models: string[], concurrency: number) {
    for (const model of models) {
      this.slots.set({ model }, concurrency);
      this.busy.set({ model }, 0);
      this.breakerOpen.set({ model }, 0);
      // Known label sets start at 0, so rate() sees the first retry.
      for (const error_type of [
        'backend_unavailable',
        'backend_timeout',
        'backend_rate_limited',
        'backend_error',
      ])
        this.retries.inc({ model, error_type }, 0);
      for (const outcome of ['completed', 'failed', 'cancelled'])
        this.batchRequests.inc({ model, outcome }, 0);
    }
  }

  /** Jobs running now, all models (the heartbeat reports it). */
  get running(): number {
    return this.busyCount;
  }

  jobStarted(model: string): void {
    this.busyCount++;
    this.busy.inc({ model });
  }

  /** The field name comes from the backend: bounded to a few known shapes, the rest is `other`. */
  droppedFromBackend(model: string, field: string): void {
    this.dropped.inc({ model, field: /^[\w.[\]+-]{1,48}$/.test(field) ? field : 'other' });
  }

  jobEnded(model: string, outcome: JobOutcome, error?: ErrorType): void {
    this.busyCount--;
    this.busy.dec({ model });
    this.jobs.inc({ model, outcome });
    if (error?.startsWith('backend_')) this.backendErrors.inc({ model, error_type: error });
  }
}
