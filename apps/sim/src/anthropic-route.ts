import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Route } from './context.ts';
import type { GenerationResult, GenerationSink } from './engine.ts';
import { SimError, sendJson } from './errors.ts';
import { FAULT_HEADER, throwIfErrorFault } from './faults.ts';
import { readJsonBody } from './http-body.ts';
import { randomHex, SSE_HEADERS } from './sse.ts';
import { contentText, estimatePromptTokens, type PromptPart, promptHash } from './text.ts';

const block = z.object({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(block)]);

/** The fields of Anthropic's Messages API the simulator reads; sampling parameters are ignored. */
export const messagesRequestSchema = z.object({
  model: z.string(),
  max_tokens: z.number().int().min(1),
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content })).min(1),
  system: content.optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
});

export type MessagesRequest = z.output<typeof messagesRequestSchema>;

type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence';

function stopReason(r: GenerationResult): StopReason {
  if (r.stopSequence !== null) return 'stop_sequence';
  return r.finishReason === 'length' ? 'max_tokens' : 'end_turn';
}

interface Reply {
  id: string;
  model: string;
  inputTokens: number;
}

/** Each SSE event carries both `event:` and `data:` lines, as Anthropic's API sends them. */
const event = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;

const DELTA_HEAD =
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":';
const DELTA_TAIL = '}}\n\n';

function streamSink(res: ServerResponse, reply: Reply): GenerationSink {
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
  res.write(
    event('message_start', JSON.stringify({ type: 'message_start', message })) +
      event(
        'content_block_start',
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
      ) +
      event('ping', '{"type":"ping"}'),
  );
  return {
    token(text) {
      res.write(DELTA_HEAD + JSON.stringify(text) + DELTA_TAIL);
    },
    finish(r) {
      const delta = JSON.stringify({
        type: 'message_delta',
        delta: { stop_reason: stopReason(r), stop_sequence: r.stopSequence },
        usage: { output_tokens: r.completionTokens },
      });
      res.end(
        (r.tail === '' ? '' : DELTA_HEAD + JSON.stringify(r.tail) + DELTA_TAIL) +
          event('content_block_stop', '{"type":"content_block_stop","index":0}') +
          event('message_delta', delta) +
          event('message_stop', '{"type":"message_stop"}'),
      );
    },
    drop() {
      res.destroy();
    },
  };
}

function jsonSink(res: ServerResponse, reply: Reply): GenerationSink {
  return {
    token() {},
    finish(r) {
      sendJson(res, 200, {
        id: reply.id,
        type: 'message',
        role: 'assistant',
        content: [{ type: 'text', text: r.text }],
        model: reply.model,
        stop_reason: stopReason(r),
        stop_sequence: r.stopSequence,
        usage: { input_tokens: reply.inputTokens, output_tokens: r.completionTokens },
      });
    },
    drop() {
      res.destroy();
    },
  };
}

/** `POST /v1/messages` in Anthropic's Messages API wire format, on the same engine as the OpenAI route. */
export const messagesRoute: Route = {
  method: 'POST',
  path: '/v1/messages',
  errorFormat: 'anthropic',
  async handle(ctx, req, res, arrival) {
    ctx.stats.requests++;
    res.setHeader('request-id', `req_${randomHex()}`);
    const body = await readJsonBody(req, messagesRequestSchema);
    if (!ctx.options.models.includes(body.model)) {
      throw new SimError('not_found', `model: ${body.model}`);
    }
    const parts: PromptPart[] = [];
    if (body.system !== undefined) parts.push({ role: 'system', text: contentText(body.system) });
    for (const m of body.messages) parts.push({ role: m.role, text: contentText(m.content) });
    const inputTokens = estimatePromptTokens(parts);
    const generation = ctx.engine.prepare({
      arrival,
      promptTokens: inputTokens,
      hash: promptHash(parts),
      maxTokens: body.max_tokens,
      ignoreEos: false,
      stop: (body.stop_sequences ?? []).filter((s) => s.length > 0),
    });

    const fault = ctx.faults.pick(req.headers[FAULT_HEADER]);
    throwIfErrorFault(fault);
    if (fault === 'timeout') return ctx.engine.hang(res);

    const reply: Reply = { id: `msg_${randomHex()}`, model: body.model, inputTokens };
    const sink = body.stream ? streamSink(res, reply) : jsonSink(res, reply);
    ctx.engine.run(res, generation, sink, fault === 'drop');
  },
};
