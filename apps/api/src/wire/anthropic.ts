import { type Delta, type DoneEvent, stopReasonToAnthropic, type Transcript } from '@llmgw/protocol';
import { z } from 'zod';
import { AnthropicErrorBody, errorFrame } from '../errors/index.ts';
import type { FrameFormat } from './frames.ts';

const AnthropicUsage = z.object({ input_tokens: z.number().int(), output_tokens: z.number().int() });
const TextContent = z.object({ type: z.literal('text'), text: z.string() });
const ThinkingContent = z.object({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string(),
});
const RedactedThinkingContent = z.object({ type: z.literal('redacted_thinking'), data: z.string() });
const ToolUseContent = z.object({
  type: z.literal('tool_use'),
  id: z.string(),
  name: z.string(),
  input: z.record(z.string(), z.unknown()),
});
const ContentBlock = z.discriminatedUnion('type', [
  TextContent,
  ThinkingContent,
  RedactedThinkingContent,
  ToolUseContent,
]);

/** The non-streaming `message`, as {@link anthropicBody} builds it. */
export const AnthropicMessage = z
  .object({
    id: z.string(),
    type: z.literal('message'),
    role: z.literal('assistant'),
    model: z.string(),
    content: z.array(ContentBlock),
    stop_reason: z.string().nullable(),
    stop_sequence: z.string().nullable(),
    usage: AnthropicUsage,
  })
  .meta({ id: 'AnthropicMessage' });

/**
 * The data of one `/v1/messages` event; its `type` is also the SSE `event:` name. What
 * {@link anthropicFrames} writes, and `error` (its errorFrame).
 */
export const AnthropicStreamEvent = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('message_start'), message: AnthropicMessage }),
    z.object({ type: z.literal('ping') }),
    z.object({
      type: z.literal('content_block_start'),
      index: z.number().int(),
      content_block: ContentBlock,
    }),
    z.object({
      type: z.literal('content_block_delta'),
      index: z.number().int(),
      delta: z.discriminatedUnion('type', [
        z.object({ type: z.literal('text_delta'), text: z.string() }),
        z.object({ type: z.literal('thinking_delta'), thinking: z.string() }),
        z.object({ type: z.literal('signature_delta'), signature: z.string() }),
        z.object({ type: z.literal('input_json_delta'), partial_json: z.string() }),
      ]),
    }),
    z.object({ type: z.literal('content_block_stop'), index: z.number().int() }),
    z.object({
      type: z.literal('message_delta'),
      delta: z.object({ stop_reason: z.string().nullable(), stop_sequence: z.string().nullable() }),
      usage: AnthropicUsage,
    }),
    z.object({ type: z.literal('message_stop') }),
    AnthropicErrorBody,
  ])
  .meta({ id: 'AnthropicStreamEvent' });

export interface MessageIdentity {
  id: string;
  model: string;
}

const sse = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

type BlockKind = 'text' | 'thinking' | 'redacted_thinking' | 'tool_use';

/**
 * `/v1/messages` events, as Anthropic streams them: `message_start`, `ping`, then one content
 * block per run of deltas of one kind (`text` ← text and refusals, `thinking` ← reasoning,
 * `tool_use` ← one tool call, its arguments as `input_json_delta`), each opened with
 * `content_block_start` and closed with `content_block_stop`; `message_delta` with the stop
 * reason and usage, `message_stop`. A thinking block's signature (an Anthropic backend's) is its
 * `signature_delta`, right before its `content_block_stop`; the next reasoning opens a new block.
 * A `redacted_thinking` block is started with its `data` and stopped at once, as Anthropic does. Logprobs have no place in this format and are not sent.
 * `input_tokens` is not known before the backend's usage arrives: 0 in `message_start`, the real
 * count in `message_delta` (the SDKs take it from there).
 */
export function anthropicFrames(idn: MessageIdentity, requestId: string): FrameFormat {
  let index = -1;
  let open: BlockKind | undefined;
  let openTool = -1;

  const close = () => {
    if (open === undefined) return '';
    open = undefined;
    return sse('content_block_stop', { type: 'content_block_stop', index });
  };
  const start = (kind: BlockKind, block: Record<string, unknown>) => {
    const out = close();
    index++;
    open = kind;
    return out + sse('content_block_start', { type: 'content_block_start', index, content_block: block });
  };
  const delta = (d: Record<string, unknown>) =>
    sse('content_block_delta', { type: 'content_block_delta', index, delta: d });

  const render = (d: Delta): string => {
    switch (d.k) {
      case 'text':
      case 'refusal': {
        if (d.t === '') return '';
        const head = open === 'text' ? '' : start('text', { type: 'text', text: '' });
        return head + delta({ type: 'text_delta', text: d.t });
      }
      case 'reasoning': {
        if (d.redacted !== undefined) {
          return start('redacted_thinking', { type: 'redacted_thinking', data: d.redacted }) + close();
        }
        if (d.t === '' && d.sig === undefined) return '';
        let out =
          open === 'thinking' ? '' : start('thinking', { type: 'thinking', thinking: '', signature: '' });
        if (d.t !== '') out += delta({ type: 'thinking_delta', thinking: d.t });
        if (d.sig !== undefined) out += delta({ type: 'signature_delta', signature: d.sig }) + close();
        return out;
      }
      case 'tool': {
        let head = '';
        if (open !== 'tool_use' || openTool !== d.i || d.id !== undefined) {
          head = start('tool_use', {
            type: 'tool_use',
            id: d.id ?? `toolu_${d.i}`,
            name: d.name ?? '',
            input: {},
          });
          openTool = d.i;
        }
        return d.args ? head + delta({ type: 'input_json_delta', partial_json: d.args }) : head;
      }
    }
  };

  return {
    open: () =>
      sse('message_start', {
        type: 'message_start',
        message: {
          id: idn.id,
          type: 'message',
          role: 'assistant',
          model: idn.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      }) + sse('ping', { type: 'ping' }),
    deltas: (deltas) => {
      let out = '';
      for (const d of deltas) out += render(d);
      return out;
    },
    done: (ev: DoneEvent) =>
      close() +
      sse('message_delta', {
        type: 'message_delta',
        delta: {
          stop_reason: stopReasonToAnthropic(ev.finishReason, ev.stopSequence),
          stop_sequence: ev.stopSequence ?? null,
        },
        usage: { input_tokens: ev.usage.promptTokens, output_tokens: ev.usage.completionTokens },
      }) +
      sse('message_stop', { type: 'message_stop' }),
    error: (err) => errorFrame(err, 'anthropic', requestId),
  };
}

/** A tool call's arguments as the object Anthropic's `tool_use.input` holds ({} if not JSON). */
function inputOf(args: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  try {
    const input: unknown = JSON.parse(args);
    // Anthropic's `input` is an object: arguments that parse to anything else stay text.
    if (input !== null && typeof input === 'object' && !Array.isArray(input))
      return input as Record<string, unknown>;
  } catch {}
  return { _raw_arguments: args };
}

/**
 * The non-streaming `message`: thinking (each block with its signature, '' when the backend gave
 * none) and redacted_thinking blocks, text and tool_use blocks in that order.
 */
export function anthropicBody(
  idn: MessageIdentity,
  t: Transcript,
  done: DoneEvent,
): z.input<typeof AnthropicMessage> {
  const content: z.input<typeof ContentBlock>[] = t.thinking.map((b) => ({ ...b }));
  const text = t.text + t.refusal;
  if (text) content.push({ type: 'text', text });
  for (const call of t.toolCalls) {
    content.push({
      type: 'tool_use',
      id: call.id,
      name: call.function.name,
      input: inputOf(call.function.arguments),
    });
  }
  return {
    id: idn.id,
    type: 'message',
    role: 'assistant',
    model: idn.model,
    content,
    stop_reason: stopReasonToAnthropic(done.finishReason, done.stopSequence),
    stop_sequence: done.stopSequence ?? null,
    usage: { input_tokens: done.usage.promptTokens, output_tokens: done.usage.completionTokens },
  };
}
