import type { Delta, DoneEvent, Transcript } from '@llmgw/protocol';
import { z } from 'zod';
import { errorFrame, OpenAIErrorBody } from '../errors/index.ts';
import {
  DoneFrame,
  type FrameFormat,
  OpenAIUsage,
  openAIObject,
  openAIUsage,
  ToolCallBody,
  ToolCallFragment,
} from './frames.ts';
import { toolFragment } from './seed.ts';

/** Chat logprobs as the backend gave them (entries relayed unchanged). */
const ChatLogprobs = z.object({
  content: z.array(z.looseObject({ token: z.string(), logprob: z.number().nullable() })),
  refusal: z.null(),
});

/** One `chat.completion.chunk`, field for field what {@link openAIChatFrames} writes. */
export const ChatCompletionChunk = z
  .object({
    ...openAIObject('chat.completion.chunk'),
    system_fingerprint: z.null(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({
          role: z.literal('assistant').optional(),
          content: z.string().optional(),
          reasoning_content: z.string().optional(),
          reasoning: z.string().optional(),
          refusal: z.string().optional(),
          tool_calls: z.array(ToolCallFragment).optional(),
        }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: z.string().nullable(),
        stop_reason: z.string().nullable().optional(),
      }),
    ),
    usage: OpenAIUsage.nullable().optional(),
  })
  .meta({ id: 'ChatCompletionChunk' });

/** The data of one `/v1/chat/completions` frame: a chunk, then `[DONE]` or an error. */
export const ChatCompletionFrame = z
  .union([ChatCompletionChunk, OpenAIErrorBody, DoneFrame])
  .meta({ id: 'ChatCompletionFrame' });

/** The non-streaming `chat.completion`. */
export const ChatCompletion = z
  .object({
    ...openAIObject('chat.completion'),
    system_fingerprint: z.null(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal('assistant'),
          content: z.string().nullable(),
          refusal: z.string().nullable(),
          reasoning_content: z.string().optional(),
          reasoning: z.string().optional(),
          tool_calls: z.array(ToolCallBody).optional(),
        }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: z.string(),
        stop_reason: z.string().nullable(),
      }),
    ),
    usage: OpenAIUsage,
  })
  .meta({ id: 'ChatCompletion' });

export interface ChunkIdentity {
  id: string;
  model: string;
  created: number;
}

/**
 * `/v1/chat/completions` chunks, field for field what vLLM streams: `delta.content` (with
 * `logprobs`), `delta.reasoning_content` and `delta.reasoning` (vLLM renamed the field; clients
 * read one or the other, so both are sent), `delta.tool_calls` fragments, `delta.refusal`, and
 * `finish_reason` as the backend gave it. Anthropic's thinking signatures have no place in this
 * format and are not sent. The constant head of every chunk is built once.
 */
export function openAIChatFrames(idn: ChunkIdentity, includeUsage: boolean, requestId: string): FrameFormat {
  const head = `data: {"id":${JSON.stringify(idn.id)},"object":"chat.completion.chunk","created":${idn.created},"model":${JSON.stringify(idn.model)},"system_fingerprint":null,"choices":[`;
  const usageTail = includeUsage ? ',"usage":null' : '';
  const chunk = (delta: string, logprobs = 'null', finish = 'null') =>
    `${head}{"index":0,"delta":${delta},"logprobs":${logprobs},"finish_reason":${finish}}]${usageTail}}\n\n`;
  return {
    open: () => chunk('{"role":"assistant","content":""}'),
    deltas: (deltas) => {
      let out = '';
      for (const d of deltas) out += deltaChunk(d, chunk);
      return out;
    },
    done: (ev: DoneEvent) => {
      let out = `${head}{"index":0,"delta":{},"logprobs":null,"finish_reason":${JSON.stringify(ev.finishReason)},"stop_reason":${JSON.stringify(ev.stopSequence ?? null)}}]${usageTail}}\n\n`;
      if (includeUsage) out += `${head}],"usage":${JSON.stringify(openAIUsage(ev.usage))}}\n\n`;
      return `${out}data: [DONE]\n\n`;
    },
    error: (err) => errorFrame(err, 'openai', requestId),
  };
}

function deltaChunk(d: Delta, chunk: (delta: string, logprobs?: string) => string): string {
  switch (d.k) {
    case 'text':
      return chunk(
        `{"content":${JSON.stringify(d.t)}}`,
        d.lp ? `{"content":${JSON.stringify(d.lp)},"refusal":null}` : 'null',
      );
    case 'reasoning': {
      // Anthropic's signatures and redacted thinking have no field in OpenAI's format: not sent.
      if (d.t === '') return '';
      const t = JSON.stringify(d.t);
      return chunk(`{"reasoning_content":${t},"reasoning":${t}}`);
    }
    case 'refusal':
      return chunk(`{"refusal":${JSON.stringify(d.t)}}`);
    case 'tool':
      return chunk(`{"tool_calls":[${JSON.stringify(toolFragment(d))}]}`);
  }
}

/** The non-streaming `chat.completion`: `content` is null when the answer is only tool calls. */
export function openAIChatBody(
  idn: ChunkIdentity,
  t: Transcript,
  done: DoneEvent,
): z.input<typeof ChatCompletion> {
  const calls = t.toolCalls;
  const message: z.input<typeof ChatCompletion>['choices'][number]['message'] = {
    role: 'assistant',
    content: t.text === '' && calls.length > 0 ? null : t.text,
    refusal: t.refusal || null,
  };
  if (t.reasoning) {
    message.reasoning_content = t.reasoning;
    message.reasoning = t.reasoning;
  }
  if (calls.length > 0) message.tool_calls = calls;
  return {
    id: idn.id,
    object: 'chat.completion',
    created: idn.created,
    model: idn.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message,
        logprobs: t.logprobs
          ? { content: t.logprobs as z.input<typeof ChatLogprobs>['content'], refusal: null }
          : null,
        finish_reason: done.finishReason,
        stop_reason: done.stopSequence ?? null,
      },
    ],
    usage: openAIUsage(done.usage),
  };
}
