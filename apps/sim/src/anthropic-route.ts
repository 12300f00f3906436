import type { ServerResponse } from 'node:http';
import {
  messagesPromptParts,
  messagesRequestSchema,
  messagesThinkingError,
  messagesThinks,
  messagesToolChoice,
} from './anthropic-request.ts';
import type { Route } from './context.ts';
import type { GenerationResult, GenerationSink } from './engine.ts';
import { SimError, sendJson } from './errors.ts';
import { FAULT_HEADER, throwIfErrorFault } from './faults.ts';
import { readJsonBody } from './http-body.ts';
import { thinkingSignature } from './reasoning.ts';
import { randomHex, SSE_HEADERS } from './sse.ts';
import { estimatePromptTokens, promptHash } from './text.ts';
import { planToolCalls, type ToolCallPlan } from './tool-calls.ts';

export { type MessagesRequest, messagesRequestSchema } from './anthropic-request.ts';

type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

function stopReason(reply: Reply, r: GenerationResult): StopReason {
  if (r.stopSequence !== null) return 'stop_sequence';
  if (r.finishReason === 'length') return 'max_tokens';
  return reply.toolCalls.length > 0 ? 'tool_use' : 'end_turn';
}

interface Reply {
  id: string;
  model: string;
  inputTokens: number;
  /** The answer opens with a thinking block. */
  thinks: boolean;
  /** The tool_use blocks the answer consists of; empty = a text answer. */
  toolCalls: readonly ToolCallPlan[];
}

/** Each SSE event carries both `event:` and `data:` lines, as Anthropic's API sends them. */
const event = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;

const delta = (index: number, d: string) =>
  `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":${d}}\n\n`;

const DELTA_TAIL = '}}\n\n';

/**
 * Anthropic's event stream. Blocks come in order — thinking, then text or tool_use(s) — each
 * with its own index; the first starts right after `message_start` (then `ping`), a later one at
 * the tick of its first token. A thinking block ends with its `signature_delta`.
 */
function streamSink(res: ServerResponse, reply: Reply): GenerationSink {
  let index = -1;
  let open: 'thinking' | 'text' | 'tool_use' | null = null;
  let openCall = -1;
  let thinking = '';
  let textHead = '';

  const start = (type: 'thinking' | 'text' | 'tool_use', contentBlock: unknown): string => {
    let out = close();
    index++;
    open = type;
    out += event(
      'content_block_start',
      JSON.stringify({ type: 'content_block_start', index, content_block: contentBlock }),
    );
    if (type === 'text') {
      textHead = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":{"type":"text_delta","text":`;
    }
    return out;
  };
  const close = (): string => {
    if (open === null) return '';
    let out = '';
    if (open === 'thinking') {
      out += delta(
        index,
        JSON.stringify({ type: 'signature_delta', signature: thinkingSignature(thinking) }),
      );
    }
    open = null;
    return `${out}${event('content_block_stop', `{"type":"content_block_stop","index":${index}}`)}`;
  };
  const startText = () => start('text', { type: 'text', text: '' });
  const startTool = (i: number, call: ToolCallPlan) => {
    openCall = i;
    return start('tool_use', { type: 'tool_use', id: call.id, name: call.name, input: {} });
  };
  // Anthropic opens every tool_use block's JSON with an empty partial.
  const emptyJson = () => delta(index, '{"type":"input_json_delta","partial_json":""}');

  const message = {
    id: reply.id,
    type: 'message',
    role: 'assistant',
    content: [],
    model: reply.model,
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: reply.inputTokens, output_tokens: 1 },
  };
  res.writeHead(200, SSE_HEADERS);
  let first: string;
  let afterPing = '';
  if (reply.thinks) first = start('thinking', { type: 'thinking', thinking: '', signature: '' });
  else if (reply.toolCalls.length > 0) {
    first = startTool(0, reply.toolCalls[0]!);
    afterPing = emptyJson();
  } else first = startText();
  res.write(
    event('message_start', JSON.stringify({ type: 'message_start', message })) +
      first +
      event('ping', '{"type":"ping"}') +
      afterPing,
  );
  return {
    reasoning(text) {
      thinking += text;
      res.write(delta(index, `{"type":"thinking_delta","thinking":${JSON.stringify(text)}}`));
    },
    token(text) {
      const out = open === 'text' ? '' : startText();
      res.write(text === '' ? out : out + textHead + JSON.stringify(text) + DELTA_TAIL);
    },
    toolCall(i, call, piece, isFirst) {
      const out = isFirst && !(open === 'tool_use' && openCall === i) ? startTool(i, call) + emptyJson() : '';
      res.write(out + delta(index, `{"type":"input_json_delta","partial_json":${JSON.stringify(piece)}}`));
    },
    finish(r) {
      const messageDelta = JSON.stringify({
        type: 'message_delta',
        delta: { stop_reason: stopReason(reply, r), stop_sequence: r.stopSequence },
        usage: { output_tokens: r.completionTokens },
      });
      const tail = r.tail === '' || open !== 'text' ? '' : textHead + JSON.stringify(r.tail) + DELTA_TAIL;
      res.end(
        tail +
          close() +
          event('message_delta', messageDelta) +
          event('message_stop', '{"type":"message_stop"}'),
      );
    },
    drop() {
      res.destroy();
    },
  };
}

/** A tool_use block's input: the arguments object, or `{}` when max_tokens cut the JSON short. */
function parseInput(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

function jsonSink(res: ServerResponse, reply: Reply): GenerationSink {
  return {
    reasoning() {},
    token() {},
    toolCall() {},
    finish(r) {
      const content: unknown[] = [];
      if (r.reasoning !== '') {
        content.push({ type: 'thinking', thinking: r.reasoning, signature: thinkingSignature(r.reasoning) });
      }
      if (reply.toolCalls.length === 0) {
        if (r.answered) content.push({ type: 'text', text: r.text });
      } else {
        for (const c of r.toolCalls) {
          content.push({ type: 'tool_use', id: c.id, name: c.name, input: parseInput(c.arguments) });
        }
      }
      sendJson(res, 200, {
        id: reply.id,
        type: 'message',
        role: 'assistant',
        content,
        model: reply.model,
        stop_reason: stopReason(reply, r),
        stop_sequence: r.stopSequence,
        usage: { input_tokens: reply.inputTokens, output_tokens: r.completionTokens },
      });
    },
    drop() {
      res.destroy();
    },
  };
}

const PATH = '/v1/messages';

/** `POST /v1/messages` in Anthropic's Messages API wire format, on the same engine as the OpenAI route. */
export const messagesRoute: Route = {
  method: 'POST',
  path: PATH,
  errorFormat: 'anthropic',
  async handle(ctx, req, res, arrival) {
    ctx.stats.requests++;
    res.setHeader('request-id', `req_${randomHex()}`);
    const body = await readJsonBody(req, messagesRequestSchema, (json) => ctx.requests.record(PATH, json));
    if (!ctx.options.models.includes(body.model)) {
      throw new SimError('not_found', `model: ${body.model}`);
    }
    const thinkingError = messagesThinkingError(body);
    if (thinkingError !== undefined) throw new SimError('bad_request', thinkingError);
    const parts = messagesPromptParts(body);
    const inputTokens = estimatePromptTokens(parts);
    const hash = promptHash(parts);
    const toolCalls = planToolCalls(messagesToolChoice(body), hash, () => `toolu_${randomHex()}`);
    const reasoningTokens = messagesThinks(body) ? ctx.options.reasoningTokens : 0;
    const generation = ctx.engine.prepare({
      arrival,
      promptTokens: inputTokens,
      hash,
      maxTokens: body.max_tokens,
      ignoreEos: false,
      stop: (body.stop_sequences ?? []).filter((s) => s.length > 0),
      reasoningTokens,
      toolCalls,
    });

    const fault = ctx.faults.pick(req.headers[FAULT_HEADER]);
    throwIfErrorFault(fault);
    if (fault === 'timeout') return ctx.engine.hang(res);

    const reply: Reply = {
      id: `msg_${randomHex()}`,
      model: body.model,
      inputTokens,
      thinks: reasoningTokens > 0,
      toolCalls,
    };
    const sink = body.stream ? streamSink(res, reply) : jsonSink(res, reply);
    ctx.engine.run(res, generation, sink, fault === 'drop');
  },
};
