import { z } from 'zod';
import { bool } from './fields.ts';

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is set (docs/observability.md, "Traces").
 * These are the standard variables the gateway reads itself; the SDK reads the rest of the
 * standard set (`OTEL_EXPORTER_OTLP_PROTOCOL`, `…_HEADERS`, `…_TIMEOUT`, `OTEL_BSP_*`, …).
 */
export const otelEnvFields = {
  /** OTLP base URL (`…/v1/traces` is appended for HTTP); unset: tracing off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** The traces endpoint itself (used as given), when it differs from the base. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  /** `service.name` of the spans; default `llmgw-api` / `llmgw-worker`. */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  /** true: no tracing even with an endpoint (the SDK's own switch). */
  OTEL_SDK_DISABLED: bool(false),
  /** Share (0–1) of requests without a sampled `traceparent` that start a trace. */
  TRACE_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(1),
};

type OtelEnv = z.output<z.ZodObject<typeof otelEnvFields>>;

export interface TracingConfig {
  enabled: boolean;
  serviceName: string;
  sampleRatio: number;
}

/** What a process's tracing is, from its parsed env. */
export function tracingConfigOf(env: OtelEnv, defaultServiceName: string): TracingConfig {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return {
    enabled: endpoint !== undefined && !env.OTEL_SDK_DISABLED,
    serviceName: env.OTEL_SERVICE_NAME ?? defaultServiceName,
    sampleRatio: env.TRACE_SAMPLE_RATIO,
  };
}
