import { ChatMessage, FunctionTool, ResponseFormat, ToolChoice } from '@llmgw/protocol';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { JobAccepted, JobStatusBody } from '../durable/job-bodies.ts';
import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import {
  API_KEY_SECURITY,
  generationHeaders,
  generationResponses,
  jsonRequest,
} from '../openapi/describe.ts';
import { ChatCompletion, ChatCompletionFrame } from '../wire/openai-chat.ts';
import {
  DEFAULT_COMPLETION_TOKENS,
  MAX_COMPLETION_TOKENS,
  refineSampling,
  SamplingFields,
  samplingParams,
} from '../wire/openai-request.ts';
import { type GenerationDeps, generate, prefersAsync, type RouteInput } from './generation.ts';

/**
 * `POST /v1/chat/completions`: OpenAI's Chat Completions API as vLLM serves it, for the official
 * SDKs, the Vercel AI SDK, LangChain and agents. Messages (content parts, tool calls, tool
 * results) reach OpenAI-compatible backends unchanged; what we cannot honour is refused with a
 * 400 naming it.
 */
export const ChatCompletionRequest = z
  .object({
    ...SamplingFields,
    messages: z.array(ChatMessage).min(1, 'must contain at least one message'),
    max_completion_tokens: z.number().int().min(1).max(MAX_COMPLETION_TOKENS).nullable().optional(),
    tools: z.array(FunctionTool).max(128).optional(),
    tool_choice: ToolChoice.optional(),
    parallel_tool_calls: z.boolean().optional(),
    // null = not set, as OpenAI and vLLM take it.
    response_format: ResponseFormat.nullable().optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    reasoning_effort: z.string().max(32).nullable().optional(),
    chat_template_kwargs: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((req, ctx) => {
    refineSampling(req, ctx);
    if (req.top_logprobs != null && req.top_logprobs > 0 && !req.logprobs) {
      ctx.addIssue({
        code: 'custom',
        path: ['top_logprobs'],
        message: 'top_logprobs requires logprobs: true',
      });
    }
  })
  .meta({ id: 'ChatCompletionRequest' });
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/**
 * A request's generation: its model, messages and the backend's params. The route and the
 * batches API (batch/batches.ts) both use it, so a batch line runs exactly as the request would.
 */
export function chatInput(body: ChatCompletionRequest): Omit<RouteInput, 'answer'> {
  return {
    kind: 'chat',
    model: body.model,
    messages: body.messages,
    params: {
      ...samplingParams(body, body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_COMPLETION_TOKENS),
      tools: body.tools,
      tool_choice: body.tool_choice,
      parallel_tool_calls: body.parallel_tool_calls,
      response_format: body.response_format ?? undefined,
      logprobs: body.logprobs ?? undefined,
      top_logprobs: body.top_logprobs ?? undefined,
      reasoning_effort: body.reasoning_effort ?? undefined,
      chat_template_kwargs: body.chat_template_kwargs,
    },
  };
}

export function registerOpenAIChat(app: GatewayApp, deps: GenerationDeps): void {
  const doc = describeRoute({
    tags: ['generation'],
    summary: "OpenAI's Chat Completions, as vLLM serves it",
    security: API_KEY_SECURITY,
    parameters: generationHeaders(true),
    requestBody: jsonRequest(ChatCompletionRequest),
    responses: generationResponses('openai', {
      body: ChatCompletion,
      frame: ChatCompletionFrame,
      accepted: z.union([JobAccepted, JobStatusBody]),
    }),
  });
  app.post('/v1/chat/completions', doc, async (c) => {
    const body = await readJsonBody(c, ChatCompletionRequest);
    return generate(
      c,
      deps,
      {
        ...chatInput(body),
        answer: {
          f: 'chat',
          stream: body.stream === true,
          usage: body.stream_options?.include_usage === true,
          async: prefersAsync(c.req.header('prefer')),
        },
      },
      body,
    );
  });
}
