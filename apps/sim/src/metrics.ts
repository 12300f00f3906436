import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FaultType } from './options.ts';
import type { Scheduler } from './scheduler.ts';

// Bucket bounds copied from vLLM's v1 metrics (vllm/v1/metrics/loggers.py) so dashboards line up.
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
  2560,
];
const ITL_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const E2E_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];

export type FinishReason = 'stop' | 'length';

/**
 * vLLM's metric names with its `model_name` label (the first served name, as vLLM does), plus
 * simulator-only counters. One registry per simulator, so several can live in one test process.
 */
export class SimMetrics {
  readonly registry = new Registry();
  private readonly ttft: Histogram.Internal<'model_name'>;
  private readonly itl: Histogram.Internal<'model_name'>;
  private readonly e2e: Histogram.Internal<'model_name'>;
  private readonly promptTokens: Counter.Internal;
  private readonly generationTokens: Counter.Internal;
  private readonly success: Counter<'model_name' | 'finished_reason'>;
  private readonly aborted: Counter.Internal;
  private readonly faults: Counter<'type'>;

  constructor(
    private readonly modelName: string,
    scheduler: Scheduler,
  ) {
    const registers = [this.registry];
    const labelNames = ['model_name'] as const;
    const model = { model_name: modelName };
    new Gauge({
      name: 'vllm:num_requests_running',
      help: 'Number of requests in model execution batches.',
      labelNames,
      registers,
      collect() {
        this.set(model, scheduler.running);
      },
    });
    new Gauge({
      name: 'vllm:num_requests_waiting',
      help: 'Number of requests waiting to be processed.',
      labelNames,
      registers,
      collect() {
        this.set(model, scheduler.waiting);
      },
    });
    this.ttft = new Histogram({
      name: 'vllm:time_to_first_token_seconds',
      help: 'Histogram of time to first token in seconds.',
      labelNames,
      buckets: TTFT_BUCKETS,
      registers,
    }).labels(model);
    this.itl = new Histogram({
      name: 'vllm:inter_token_latency_seconds',
      help: 'Histogram of inter-token latency in seconds.',
      labelNames,
      buckets: ITL_BUCKETS,
      registers,
    }).labels(model);
    this.e2e = new Histogram({
      name: 'vllm:e2e_request_latency_seconds',
      help: 'Histogram of e2e request latency in seconds.',
      labelNames,
      buckets: E2E_BUCKETS,
      registers,
    }).labels(model);
    this.promptTokens = new Counter({
      name: 'vllm:prompt_tokens_total',
      help: 'Number of prefill tokens processed.',
      labelNames,
      registers,
    }).labels(model);
    this.generationTokens = new Counter({
      name: 'vllm:generation_tokens_total',
      help: 'Number of generation tokens processed.',
      labelNames,
      registers,
    }).labels(model);
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.aborted = new Counter({
      name: 'sim_requests_aborted_total',
      help: 'Requests whose client disconnected before the response finished.',
      labelNames,
      registers,
    }).labels(model);
    this.faults = new Counter({
      name: 'sim_faults_injected_total',
      help: 'Failures injected by the simulator, by type.',
      labelNames: ['type'],
      registers,
    });
  }

  observeTtft(seconds: number): void {
    this.ttft.observe(seconds);
  }

  observeItl(seconds: number): void {
    this.itl.observe(seconds);
  }

  /** Called once per request that ran (finished, aborted or dropped after getting a slot). */
  recordPrompt(tokens: number): void {
    this.promptTokens.inc(tokens);
  }

  recordGenerated(tokens: number): void {
    if (tokens > 0) this.generationTokens.inc(tokens);
  }

  recordSuccess(reason: FinishReason, e2eSeconds: number): void {
    this.success.inc({ model_name: this.modelName, finished_reason: reason });
    this.e2e.observe(e2eSeconds);
  }

  recordAborted(): void {
    this.aborted.inc();
  }

  recordFault(type: FaultType): void {
    this.faults.inc({ type });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
