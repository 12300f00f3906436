import type { Context } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import type { AppEnv } from '../context.ts';
import { apiErrorFromJob } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';
import { setTimingHeaders } from '../timing.ts';
import type { FrameFormat } from '../wire/frames.ts';
import type { ChatService } from './chat-service.ts';
import type { SubmittedChat } from './submitted-chat.ts';

/**
 * Relays a job's events to the client as Server-Sent Events. Every write is awaited, so a slow
 * client applies backpressure instead of growing a buffer; events that queued up meanwhile go
 * out together in the next write. A client that leaves cancels the job.
 */
export function relaySSE(
  c: Context<AppEnv>,
  chat: SubmittedChat,
  service: ChatService,
  format: FrameFormat,
  metrics: ApiMetrics,
) {
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
    stream.onAbort(() => service.abandon(chat, 'client_disconnected'));
    const opening = format.open();
    if (opening) await stream.write(opening);
    for await (const batch of chat.sub) {
      let out = '';
      const at = performance.now();
      for (const ev of batch) {
        chat.meter.onEvent(ev, at);
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
 * A non-streaming answer: waits for the whole generation (a client that leaves cancels it), then
 * sets the timing headers and the token counts of the `request_completed` line.
 */
export async function collectResponse(c: Context<AppEnv>, chat: SubmittedChat, service: ChatService) {
  c.req.raw.signal.addEventListener('abort', () => service.abandon(chat, 'client_disconnected'));
  const collected = await service.collect(chat);
  const { done } = collected;
  setTimingHeaders(c, {
    admissionMs: chat.enqueuedAtPerf - c.var.startedAt,
    queueMs: chat.meter.queueWaitMs,
    backendTtftMs: done.ttftMs,
    backendMs: done.genMs,
    totalMs: performance.now() - c.var.startedAt,
  });
  c.set('tokens', { prompt: done.usage.promptTokens, completion: done.usage.completionTokens });
  return collected;
}
