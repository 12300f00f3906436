import { type DoneEvent, Transcript } from '@llmgw/protocol';
import type { Context } from 'hono';
import type { AppEnv } from '../context.ts';
import { ApiError, apiErrorFromJob } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { JobCanceller } from '../queue/cancel.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';
import { setTimingHeaders } from '../timing.ts';
import { bodyOf, framesOf } from '../wire/rendition.ts';
import type { ClientLink } from './client-link.ts';
import { FrameIds } from './frame-ids.ts';
import { RelaySpan } from './relay-span.ts';
import { type SseSink, sseResponse } from './sse-sink.ts';
import { StreamMeter } from './stream-meter.ts';

// A job's answer to its HTTP client, every way a route may ask for it: streamed as Server-Sent
// Events in the job's wire format (relaySSE), read whole for one JSON body (collectResponse), or
// not at all yet (async, 202). The request that submitted the job feeds a StreamMeter (metrics);
// a follower (resume, idempotent retry) does not, and its leaving never cancels the job.

export interface RelayDeps {
  metrics: ApiMetrics;
  canceller: Pick<JobCanceller, 'abandon'>;
}

export interface CollectedChat {
  transcript: Transcript;
  done: DoneEvent;
}

const meterOf = (c: Context<AppEnv>, chat: SubmittedChat, metrics: ApiMetrics) =>
  chat.follower ? undefined : new StreamMeter(metrics, chat.model, c.get('startedAt'), chat.enqueuedAt);

/**
 * The answer the request asked for: a stream, a whole body, or 202 for an asynchronous job.
 * Its client leaving first (`client`) abandons the job (queue/cancel.ts): cancelled at once,
 * unless the request is resumable.
 */
export async function respond(
  c: Context<AppEnv>,
  chat: SubmittedChat,
  deps: RelayDeps,
  stream: boolean,
  client: ClientLink,
) {
  if (!chat.async) client.onGone(() => deps.canceller.abandon(chat, 'client_disconnected'));
  if (stream && !chat.async) return relaySSE(c, chat, deps);
  c.header('X-Job-ID', chat.jobId);
  if (chat.async) return accepted(c, chat);
  const { transcript, done } = await collectResponse(c, chat, deps);
  return c.json(bodyOf(chat.rendition, chat.jobId, transcript, done) as object);
}

/**
 * 202 for `Prefer: respond-async`: the job runs whether anyone follows it or not; its submitting
 * api keeps its accounting until it ends (the subscription is drained in the background).
 */
function accepted(c: Context<AppEnv>, chat: SubmittedChat) {
  void (async () => {
    for await (const _ of chat.sub) {
      // Nothing to relay: the event log has it all for GET /v1/jobs/{id}.
    }
  })();
  c.header('Location', `/v1/jobs/${chat.jobId}`);
  c.header('Preference-Applied', 'respond-async');
  return c.json({ id: chat.jobId, object: 'job', status: 'queued', position: chat.position ?? 1 }, 202);
}

/**
 * Every frame carries an `id:` (its number in the stream, from 0), so a client that lost its
 * connection resumes exactly after the last one it got (GET /v1/jobs/{id}/events); frames up to
 * `after` are not sent (a resume). Every write is awaited, so a slow client applies
 * backpressure instead of growing a buffer; events that queued up meanwhile go out together.
 */
export function relaySSE(c: Context<AppEnv>, chat: SubmittedChat, deps: RelayDeps, after = -1) {
  const { metrics, canceller } = deps;
  const meter = meterOf(c, chat, metrics);
  const format = framesOf(chat.rendition, chat.jobId);
  const ids = new FrameIds(after);
  const span = new RelaySpan(chat, 'stream');
  c.header('X-Job-ID', chat.jobId);
  setTimingHeaders(c, { admissionMs: chat.enqueuedAtPerf - c.get('startedAt') });
  return sseResponse(
    c,
    async (stream) => {
      metrics.activeStreams.inc();
      try {
        await relay(stream);
        if (stream.aborted) span.clientGone();
      } finally {
        metrics.activeStreams.dec();
        span.end();
      }
    },
    () => canceller.abandon(chat, 'client_disconnected'),
  );

  async function relay(stream: SseSink): Promise<void> {
    const opening = ids.number(format.open());
    if (opening) await stream.write(opening);
    for await (const batch of chat.sub) {
      let out = '';
      const at = performance.now();
      for (const ev of batch) {
        meter?.onEvent(ev, at);
        span.onEvent(ev);
        if (ev.type === 'delta') out += ids.number(format.deltas(ev.d));
        // A comment line: the frame formats of every endpoint stay exactly as specified.
        else if (ev.type === 'queued') out += `: queued position=${ev.position}\n\n`;
        else if (ev.type === 'done') {
          out += ids.number(format.done(ev));
          c.set('tokens', { prompt: ev.usage.promptTokens, completion: ev.usage.completionTokens });
        } else if (ev.type === 'error') {
          // An end of this api's own (shutdown, lost events) is not in the job's log: no id, so a
          // client resuming elsewhere continues after the last logged frame.
          const frame = format.error(apiErrorFromJob(ev.error, ev.message));
          out += ev.seq < 0 ? frame : ids.number(frame);
          c.get('log').warn({ error_type: ev.error, err: ev.message }, 'stream_failed');
        }
      }
      if (out) await stream.write(out);
      if (stream.aborted) break;
    }
  }
}

/**
 * A non-streaming answer: waits for the whole generation, then sets the timing headers and the
 * token counts of the `request_completed` line. Throws ApiError for a failed job; ends early
 * (the subscription closed) when the client left.
 */
export async function collectResponse(
  c: Context<AppEnv>,
  chat: SubmittedChat,
  deps: RelayDeps,
): Promise<CollectedChat> {
  const meter = meterOf(c, chat, deps.metrics);
  const span = new RelaySpan(chat, 'whole');
  const collected = await collect(chat, meter, span).finally(() => span.end());
  const { done } = collected;
  setTimingHeaders(c, {
    admissionMs: chat.enqueuedAtPerf - c.get('startedAt'),
    queueMs: meter?.queueWaitMs,
    backendTtftMs: done.ttftMs,
    backendMs: done.genMs,
    totalMs: performance.now() - c.get('startedAt'),
  });
  c.set('tokens', { prompt: done.usage.promptTokens, completion: done.usage.completionTokens });
  return collected;
}

async function collect(
  chat: SubmittedChat,
  meter: StreamMeter | undefined,
  span: RelaySpan,
): Promise<CollectedChat> {
  const transcript = new Transcript();
  for await (const batch of chat.sub) {
    for (const ev of batch) {
      meter?.onEvent(ev);
      span.onEvent(ev);
      if (ev.type === 'delta') transcript.add(ev.d);
      else if (ev.type === 'done') return { transcript, done: ev };
      else if (ev.type === 'error') throw apiErrorFromJob(ev.error, ev.message);
    }
  }
  // The subscription closed before the end: the client left (abandoned, relay/client-link.ts).
  span.clientGone();
  throw new ApiError('client_closed_request', 'the client closed the connection; its job was cancelled');
}
