import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

export type { Attributes, Context, Span };
export { context, propagation, SpanKind, SpanStatusCode, trace };

/** Every span the gateway makes comes from this tracer (a no-op until tracing starts). */
export const tracer = trace.getTracer('llmgw');

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what is still buffered, then stops (the last step of a shutdown). */
  shutdown(): Promise<void>;
}

export interface StartTracingOptions {
  enabled: boolean;
  serviceName: string;
  /** `service.instance.id`: the same id as the process's logs and metrics. */
  instanceId: string;
  sampleRatio: number;
}

/**
 * Starts the OpenTelemetry Node SDK for traces only (metrics stay with Prometheus, logs with
 * pino), exporting over OTLP as the standard `OTEL_EXPORTER_OTLP_*` variables say (default
 * http/protobuf). Off: nothing starts, and every span below is the API's no-op.
 */
export function startTracing(opts: StartTracingOptions): Tracing {
  if (!opts.enabled) return { enabled: false, shutdown: async () => {} };
  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    resource: resourceFromAttributes({ 'service.instance.id': opts.instanceId }),
    sampler: new ParentBasedSampler({ root: new RequestsOnly(opts.sampleRatio) }),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return {
    enabled: true,
    // An unreachable collector never holds a stop for the exporter's 10 s timeout.
    shutdown: () => Promise.race([sdk.shutdown(), new Promise<void>((r) => setTimeout(r, 2000).unref())]),
  };
}

/**
 * A trace starts only at an HTTP request (a SERVER span), for `ratio` of them; a span with a
 * parent follows its parent's decision (ParentBasedSampler), so a client's sampled `traceparent`
 * is honoured, and a job's spans follow the request that enqueued it. BullMQ's own spans without
 * a job (a worker's idle polling, its stalled-job checks) would otherwise start a trace each,
 * every few seconds per worker.
 */
class RequestsOnly implements Sampler {
  private readonly ratio: TraceIdRatioBasedSampler;
  constructor(private readonly share: number) {
    this.ratio = new TraceIdRatioBasedSampler(share);
  }
  shouldSample(
    ctx: Context,
    traceId: string,
    _name: string,
    kind: SpanKind,
    _attributes: Attributes,
    _links: Link[],
  ): SamplingResult {
    if (kind !== SpanKind.SERVER) return { decision: SamplingDecision.NOT_RECORD };
    return this.ratio.shouldSample(ctx, traceId);
  }
  toString(): string {
    return `RequestsOnly{${this.share}}`;
  }
}

/** Ends a span as failed: its status, and `error.type` (the gateway's error code). */
export function failSpan(span: Span, errorType: string, message?: string): void {
  span.setAttribute('error.type', errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
}

/**
 * Runs `fn` inside a new active span (its children and BullMQ's enqueue parent on it), ending
 * it when `fn` settles; a throw marks it failed with the error's `code` (ApiError) or name.
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      const e = err as { code?: unknown; name?: string; message?: string };
      failSpan(span, typeof e.code === 'string' ? e.code : (e.name ?? 'Error'), e.message);
      throw err;
    } finally {
      span.end();
    }
  });
}
