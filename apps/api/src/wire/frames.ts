import type { Delta, DoneEvent } from '@llmgw/protocol';
import { z } from 'zod';
import type { ApiError } from '../errors/index.ts';

/**
 * How one wire format spells a stream. Each method returns complete SSE text (`data: …\n\n`,
 * or `event: …\ndata: …\n\n`); a format may keep state between calls (Anthropic's content
 * blocks), so one is made per request.
 */
export interface FrameFormat {
  /** Sent once, before anything else (e.g. OpenAI's role chunk); may be empty. */
  open(): string;
  deltas(deltas: readonly Delta[]): string;
  done(ev: DoneEvent): string;
  error(err: ApiError): string;
}

/** The fields every OpenAI completion object opens with, `object` naming its kind. */
export const openAIObject = <K extends string>(object: K) => ({
  id: z.string(),
  object: z.literal(object),
  created: z.number().int(),
  model: z.string(),
});

/** OpenAI's usage object, as every OpenAI-shaped body and `/chat`'s carry it. */
export const OpenAIUsage = z
  .object({
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    total_tokens: z.number().int(),
  })
  .meta({ id: 'Usage' });

/** A whole tool call, as a non-streaming answer holds it. */
export const ToolCallBody = z
  .object({
    id: z.string(),
    type: z.literal('function'),
    function: z.object({ name: z.string(), arguments: z.string() }),
  })
  .meta({ id: 'ToolCall' });

/**
 * One tool-call fragment in OpenAI's streaming shape (`delta.tool_calls[]`, `/chat`'s
 * `tool_call`): the first of a call has `id`, `type` and `function.name`; the others add pieces
 * of `function.arguments`, to concatenate per `index`.
 */
export const ToolCallFragment = z
  .object({
    index: z.number().int(),
    id: z.string().optional(),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string().optional(), arguments: z.string() }),
  })
  .meta({ id: 'ToolCallFragment' });

/** `data: [DONE]`, the last frame of a stream that did not fail (not JSON: the literal text). */
export const DoneFrame = z.literal('[DONE]').meta({ id: 'DoneFrame' });

/** OpenAI's usage object from ours. */
export function openAIUsage(u: {
  promptTokens: number;
  completionTokens: number;
}): z.infer<typeof OpenAIUsage> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
  };
}
