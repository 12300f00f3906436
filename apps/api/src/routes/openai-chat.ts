import type { GenerationParams } from '@llmgw/protocol';
import { z } from 'zod';
import type { AppDeps, GatewayApp } from '../app.ts';
import { ApiError } from '../errors.ts';
import { collectResponse, type FrameFormat, relaySSE } from '../jobs/relay.ts';
import { readJsonBody } from '../middleware/json-body.ts';

/**
 * `POST /v1/chat/completions`: OpenAI's Chat Completions API, enough for the official SDKs,
 * LangChain, LlamaIndex and curl scripts written for vLLM. Parameters are passed to the backend
 * under their OpenAI names; what we cannot honour is refused with a 400 naming it.
 */
const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const Content = z.union([z.string(), z.array(TextPart)]).nullable();

const Message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: Content.optional(),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
});

export const MAX_COMPLETION_TOKENS = 4096;
export const DEFAULT_COMPLETION_TOKENS = 1024;

export const ChatCompletionRequest = z
  .object({
    model: z.string().min(1).optional(),
    messages: z.array(Message).min(1, 'must contain at least one message'),
    stream: z.boolean().default(false),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
    max_tokens: z.number().int().min(1).max(MAX_COMPLETION_TOKENS).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).max(MAX_COMPLETION_TOKENS).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    stop: z
      .union([z.string(), z.array(z.string()).max(4)])
      .nullable()
      .optional(),
    seed: z.number().int().nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    user: z.string().max(256).optional(),
    n: z.number().int().min(1).nullable().optional(),
    tools: z.array(z.unknown()).optional(),
    tool_choice: z.unknown().optional(),
    response_format: z.unknown().optional(),
  })
  .superRefine((req, ctx) => {
    if (req.n != null && req.n > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['n'],
        message: 'n > 1 is not supported; send n separate requests',
      });
    }
    if (req.stream_options && !req.stream) {
      ctx.addIssue({
        code: 'custom',
        path: ['stream_options'],
        message: 'stream_options requires stream: true',
      });
    }
  });
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

const textOf = (content: z.infer<typeof Content> | undefined): string =>
  content == null ? '' : typeof content === 'string' ? content : content.map((p) => p.text).join('');

const defined = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

function paramsOf(req: ChatCompletionRequest): GenerationParams {
  return {
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_COMPLETION_TOKENS,
    temperature: defined(req.temperature),
    top_p: defined(req.top_p),
    stop: req.stop == null ? undefined : typeof req.stop === 'string' ? [req.stop] : req.stop,
    seed: defined(req.seed),
    presence_penalty: defined(req.presence_penalty),
    frequency_penalty: defined(req.frequency_penalty),
    user: req.user,
    tools: req.tools,
    tool_choice: req.tool_choice,
    response_format: req.response_format,
  };
}

/**
 * OpenAI chunks. The constant part of every token chunk is built once per stream; a token costs
 * one JSON.stringify of its text.
 */
function openAIFrames(id: string, model: string, created: number, includeUsage: boolean): FrameFormat {
  const head = `{"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":[`;
  const usageTail = includeUsage ? ',"usage":null' : '';
  return {
    open: () =>
      `data: ${head}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${usageTail}}\n\n`,
    tokens: (texts) => {
      let out = '';
      for (const t of texts) {
        out += `data: ${head}{"index":0,"delta":{"content":${JSON.stringify(t)}},"logprobs":null,"finish_reason":null}]${usageTail}}\n\n`;
      }
      return out;
    },
    done: (ev) => {
      let out = `data: ${head}{"index":0,"delta":{},"logprobs":null,"finish_reason":${JSON.stringify(ev.finishReason)}}]${usageTail}}\n\n`;
      if (includeUsage) {
        const { promptTokens: p, completionTokens: c } = ev.usage;
        out += `data: ${head}],"usage":{"prompt_tokens":${p},"completion_tokens":${c},"total_tokens":${p + c}}}\n\n`;
      }
      return `${out}data: [DONE]\n\n`;
    },
    error: (err) =>
      `data: ${JSON.stringify({ error: { message: err.message, type: err.status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: err.code } })}\n\n`,
  };
}

export function registerOpenAIChat(app: GatewayApp, deps: AppDeps): void {
  app.post('/v1/chat/completions', async (c) => {
    const body = await readJsonBody(c, ChatCompletionRequest);
    const model = body.model ?? deps.defaultModel;
    // The authenticated caller; a user id or tier in the body or headers claims nothing.
    const { userId, tier } = c.var.principal!;
    c.set('model', model);
    const messages = body.messages.map((m) => ({
      role: m.role,
      content: textOf(m.content),
      ...(m.name !== undefined && { name: m.name }),
      ...(m.tool_call_id !== undefined && { tool_call_id: m.tool_call_id }),
    }));
    if (messages.every((m) => m.content === '')) {
      throw new ApiError('invalid_request', 'messages: every message is empty', { param: 'messages' });
    }
    const chat = await deps.chat.submit({
      model,
      messages,
      params: paramsOf(body),
      requestId: c.var.requestId,
      requestStart: c.var.startedAt,
      userId,
      tier,
    });
    const id = `chatcmpl-${chat.jobId.replaceAll('-', '')}`;
    const created = Math.floor(chat.enqueuedAt / 1000);
    if (body.stream) {
      const includeUsage = body.stream_options?.include_usage === true;
      return relaySSE(c, chat, deps.chat, openAIFrames(id, model, created, includeUsage), deps.metrics);
    }

    const { text, done } = await collectResponse(c, chat, deps.chat);
    const { promptTokens: p, completionTokens: n } = done.usage;
    return c.json({
      id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null },
          logprobs: null,
          finish_reason: done.finishReason,
        },
      ],
      usage: { prompt_tokens: p, completion_tokens: n, total_tokens: p + n },
    });
  });
}
