import type { DoneEvent, Transcript } from '@llmgw/protocol';
import { z } from 'zod';
import { AnthropicMessage, AnthropicStreamEvent, anthropicBody, anthropicFrames } from './anthropic.ts';
import { type FrameFormat, openAIUsage } from './frames.ts';
import { ChatCompletion, ChatCompletionFrame, openAIChatBody, openAIChatFrames } from './openai-chat.ts';
import {
  openAICompletionBody,
  openAICompletionFrames,
  TextCompletion,
  TextCompletionFrame,
} from './openai-completions.ts';
import { SeedBody, SeedFrame, seedBody, seedFrames } from './seed.ts';

/** A finished job's non-streaming body, in the wire format of the request that submitted it. */
export const AnswerBody = z
  .union([SeedBody, ChatCompletion, TextCompletion, AnthropicMessage])
  .meta({ id: 'AnswerBody', description: 'the non-streaming answer of the endpoint that submitted the job' });

/** The data of one frame of a job's stream, in the wire format of the request that submitted it. */
export const AnyFrame = z
  .union([SeedFrame, ChatCompletionFrame, TextCompletionFrame, AnthropicStreamEvent])
  .meta({ id: 'AnyFrame', description: 'a frame of the stream of the endpoint that submitted the job' });

/**
 * How a job's answer is spelled for the request that submitted it: which wire format, and the
 * few values its frames carry besides the events. Kept with the job (durable/job-record.ts), so a
 * resume, an idempotent replay or an async result renders exactly what the original request got:
 * every value here is fixed at submit time, none is read from the clock again.
 */
export type Rendition = {
  /** seed: POST /chat; chat: /v1/chat/completions; completion: /v1/completions; messages: /v1/messages. */
  f: 'seed' | 'chat' | 'completion' | 'messages';
  model: string;
  /** Epoch seconds (OpenAI `created`). */
  created: number;
  /** stream_options.include_usage. */
  usage?: boolean;
  /** The submitting request's id (error frames carry it). */
  rid: string;
};

const compact = (jobId: string) => jobId.replaceAll('-', '');

/** The stream's frames (one FrameFormat per stream: a format may keep state). */
export function framesOf(r: Rendition, jobId: string): FrameFormat {
  switch (r.f) {
    case 'seed':
      return seedFrames(r.rid);
    case 'chat':
      return openAIChatFrames(
        { id: `chatcmpl-${compact(jobId)}`, model: r.model, created: r.created },
        r.usage === true,
        r.rid,
      );
    case 'completion':
      return openAICompletionFrames(
        { id: `cmpl-${compact(jobId)}`, model: r.model, created: r.created },
        r.usage === true,
        r.rid,
      );
    case 'messages':
      return anthropicFrames({ id: `msg_${compact(jobId)}`, model: r.model }, r.rid);
  }
}

/** The non-streaming body of a finished job. */
export function bodyOf(
  r: Rendition,
  jobId: string,
  t: Transcript,
  done: DoneEvent,
): z.input<typeof AnswerBody> {
  switch (r.f) {
    case 'seed':
      return seedBody(t, r.model, done.finishReason, openAIUsage(done.usage));
    case 'chat':
      return openAIChatBody(
        { id: `chatcmpl-${compact(jobId)}`, model: r.model, created: r.created },
        t,
        done,
      );
    case 'completion':
      return openAICompletionBody(
        { id: `cmpl-${compact(jobId)}`, model: r.model, created: r.created },
        t,
        done,
      );
    case 'messages':
      return anthropicBody({ id: `msg_${compact(jobId)}`, model: r.model }, t, done);
  }
}
