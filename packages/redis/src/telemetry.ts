import { BullMQOtel } from 'bullmq-otel';

/**
 * BullMQ's `telemetry` option when tracing is on: the enqueue becomes a PRODUCER span that
 * writes its context into the job, and the worker's run a CONSUMER span continuing that trace.
 * Off: undefined, and BullMQ makes no span at all (not even a no-op one).
 */
export function queueTelemetry(tracing: { enabled: boolean }): BullMQOtel | undefined {
  return tracing.enabled ? new BullMQOtel({ tracerName: 'llmgw' }) : undefined;
}
