import { type DoneEvent, Transcript } from '@llmgw/protocol';
import type { Context } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import type { AppEnv } from '../context.ts';
import { ApiError, apiErrorFromJob } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { JobCanceller } from '../queue/cancel.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';
import { setTimingHeaders } from '../timing.ts';
import type { FrameFormat } from '../wire/frames.ts';
import { StreamMeter } from './stream-meter.ts';

// A submitted job's answer to its HTTP client, both ways a route may ask for it: streamed as
// Server-Sent Events in the route's wire format (relaySSE), or read whole for one JSON body that
// the route renders (collectResponse). Either way a StreamMeter sees every event, and a client
// that leaves cancels the job.

export interface RelayDeps {
  metrics: ApiMetrics;
  canceller: Pick<JobCanceller, 'abandon'>;
}

export interface CollectedChat {
  transcript: Transcript;
  done: DoneEvent;
}

const meterOf = (c: Context<AppEnv>, chat: SubmittedChat, metrics: ApiMetrics) =>
  new StreamMeter(metrics, chat.model, c.var.startedAt, chat.enqueuedAt);

/**
 * Every write is awaited, so a slow client applies backpressure instead of growing a buffer;
 * events that queued up meanwhile go out together in the next write.
 */
export function relaySSE(c: Context<AppEnv>, chat: SubmittedChat, deps: RelayDeps, format: FrameFormat) {
  const { metrics, canceller } = deps;
  const meter = meterOf(c, chat, metrics);
  c.header('X-Accel-Buffering', 'no');
  setTimingHeaders(c, { admissionMs: chat.enqueuedAtPerf - c.var.startedAt });
  return streamSSE(c, async (stream) => {
    metrics.activeStreams.inc();
    try {
      await relay(stream);
    } finally {
      metrics.activeStreams.dec();
    }
  });

  async function relay(stream: SSEStreamingApi): Promise<void> {
    stream.onAbort(() => canceller.abandon(chat, 'client_disconnected'));
    const opening = format.open();
    if (opening) await stream.write(opening);
    for await (const batch of chat.sub) {
      let out = '';
      const at = performance.now();
      for (const ev of batch) {
        meter.onEvent(ev, at);
        if (ev.type === 'delta') out += format.deltas(ev.d);
        // A comment line: the frame formats of both endpoints stay exactly as specified.
        else if (ev.type === 'queued') out += `: queued position=${ev.position}\n\n`;
        else if (ev.type === 'done') {
          out += format.done(ev);
          c.set('tokens', { prompt: ev.usage.promptTokens, completion: ev.usage.completionTokens });
        } else if (ev.type === 'error') {
          out += format.error(apiErrorFromJob(ev.error, ev.message));
          c.var.log.warn({ error_type: ev.error, err: ev.message }, 'stream_failed');
        }
      }
      if (out) await stream.write(out);
      if (stream.aborted) break;
    }
  }
}

/**
 * A non-streaming answer: waits for the whole generation, then sets the timing headers and the
 * token counts of the `request_completed` line. Throws ApiError for a failed job.
 */
export async function collectResponse(
  c: Context<AppEnv>,
  chat: SubmittedChat,
  deps: RelayDeps,
): Promise<CollectedChat> {
  const meter = meterOf(c, chat, deps.metrics);
  c.req.raw.signal.addEventListener('abort', () => deps.canceller.abandon(chat, 'client_disconnected'));
  const collected = await collect(chat, meter);
  const { done } = collected;
  setTimingHeaders(c, {
    admissionMs: chat.enqueuedAtPerf - c.var.startedAt,
    queueMs: meter.queueWaitMs,
    backendTtftMs: done.ttftMs,
    backendMs: done.genMs,
    totalMs: performance.now() - c.var.startedAt,
  });
  c.set('tokens', { prompt: done.usage.promptTokens, completion: done.usage.completionTokens });
  return collected;
}

async function collect(chat: SubmittedChat, meter: StreamMeter): Promise<CollectedChat> {
  const transcript = new Transcript();
  for await (const batch of chat.sub) {
    for (const ev of batch) {
      meter.onEvent(ev);
      if (ev.type === 'delta') transcript.add(ev.d);
      else if (ev.type === 'done') return { transcript, done: ev };
      else if (ev.type === 'error') throw apiErrorFromJob(ev.error, ev.message);
    }
  }
  throw new ApiError('internal_error', 'the job ended without a result');
}
