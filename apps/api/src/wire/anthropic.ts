import { type Delta, type DoneEvent, stopReasonToAnthropic, type Transcript } from '@llmgw/protocol';
import { errorFrame } from '../errors/index.ts';
import type { FrameFormat } from './frames.ts';

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
function inputOf(args: string): unknown {
  if (args.trim() === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return { _raw_arguments: args };
  }
}

/**
 * The non-streaming `message`: thinking (each block with its signature, '' when the backend gave
 * none) and redacted_thinking blocks, text and tool_use blocks in that order.
 */
export function anthropicBody(idn: MessageIdentity, t: Transcript, done: DoneEvent) {
  const content: Record<string, unknown>[] = t.thinking.map((b) => ({ ...b }));
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
