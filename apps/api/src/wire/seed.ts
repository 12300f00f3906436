import type { Delta, Transcript } from '@llmgw/protocol';
import { z } from 'zod';
import { errorFrame, SeedErrorFrame } from '../errors/index.ts';
import { DoneFrame, type FrameFormat, OpenAIUsage, ToolCallBody, ToolCallFragment } from './frames.ts';

/** What the `data:` of one `/chat` frame holds (the SSE frame schema of the OpenAPI document). */
export const SeedFrame = z
  .union([
    z.object({ token: z.string() }),
    z.object({ reasoning: z.string() }),
    z.object({ refusal: z.string() }),
    z.object({ tool_call: ToolCallFragment }),
    SeedErrorFrame,
    DoneFrame,
  ])
  .meta({
    id: 'SeedFrame',
    description:
      'the data of one /chat frame: text ({"token"}), thinking ({"reasoning"}), a tool-call fragment, a refusal; the stream ends with [DONE] or an error frame',
  });

/** The non-streaming `/chat` answer. */
export const SeedBody = z
  .object({
    content: z.string(),
    reasoning: z.string().optional(),
    tool_calls: z.array(ToolCallBody).optional(),
    refusal: z.string().optional(),
    model: z.string(),
    finish_reason: z.string(),
    usage: OpenAIUsage,
  })
  .meta({ id: 'SeedAnswer' });

/**
 * `/chat`, the seed's format: `data: {"token":"…"}` for text, then `data: [DONE]`; errors as
 * `data: {"error":{…}}`. What the seed had no frame for is not dropped:
 * - `data: {"reasoning":"…"}`: a reasoning model's thinking, before the answer;
 * - `data: {"tool_call":{"index":0,"id":"…","type":"function","function":{"name":"…","arguments":""}}}`
 *   starts a tool call, and `{"tool_call":{"index":0,"function":{"arguments":"…"}}}` continues it
 *   (OpenAI's fragment shape; concatenate `arguments` per index);
 * - `data: {"refusal":"…"}`.
 */
export function seedFrames(requestId: string): FrameFormat {
  return {
    open: () => '',
    deltas: (deltas) => {
      let out = '';
      for (const d of deltas) {
        // A thinking signature or redacted thinking alone (Anthropic's) has no frame.
        if (d.k === 'reasoning' && d.t === '') continue;
        out += `data: ${JSON.stringify(seedFrame(d))}\n\n`;
      }
      return out;
    },
    done: () => 'data: [DONE]\n\n',
    error: (err) => errorFrame(err, 'seed', requestId),
  };
}

function seedFrame(d: Delta): Record<string, unknown> {
  switch (d.k) {
    case 'text':
      return { token: d.t };
    case 'reasoning':
      return { reasoning: d.t };
    case 'refusal':
      return { refusal: d.t };
    case 'tool':
      return { tool_call: toolFragment(d) };
  }
}

/** One tool-call fragment in OpenAI's streaming shape (`delta.tool_calls[]`). */
export function toolFragment(d: Extract<Delta, { k: 'tool' }>): z.infer<typeof ToolCallFragment> {
  if (d.id !== undefined) {
    return {
      index: d.i,
      id: d.id,
      type: 'function',
      function: { name: d.name ?? '', arguments: d.args ?? '' },
    };
  }
  return { index: d.i, function: { ...(d.name ? { name: d.name } : {}), arguments: d.args ?? '' } };
}

/** The non-streaming `/chat` answer: the seed's fields, plus reasoning and tool calls when there are any. */
export function seedBody(
  t: Transcript,
  model: string,
  finishReason: string,
  usage: z.infer<typeof OpenAIUsage>,
): z.infer<typeof SeedBody> {
  const calls = t.toolCalls;
  return {
    content: t.text,
    ...(t.reasoning && { reasoning: t.reasoning }),
    ...(calls.length > 0 && { tool_calls: calls }),
    ...(t.refusal && { refusal: t.refusal }),
    model,
    finish_reason: finishReason,
    usage,
  };
}
