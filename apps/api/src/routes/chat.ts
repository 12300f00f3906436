import { ChatMessage, FunctionTool, ToolChoice } from '@llmgw/protocol';
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
import { SeedBody, SeedFrame } from '../wire/seed.ts';
import { type GenerationDeps, generate, prefersAsync } from './generation.ts';

/**
 * `POST /chat`: the seed's request and its frame format. Its `{role, content}` messages are a
 * subset of OpenAI's, which are accepted whole (content parts, tool calls, tool results), with
 * `tools` and `tool_choice`, so an agent loop can run here too.
 */
export const ChatRequest = z
  .object({
    messages: z.array(ChatMessage).min(1, 'must contain at least one message'),
    tools: z.array(FunctionTool).max(128).optional(),
    tool_choice: ToolChoice.optional(),
    model: z.string().min(1).optional(),
    max_tokens: z.number().int().min(1).max(4096).default(1024),
    stream: z.boolean().default(true),
    /** The write-up's field; accepted for compatibility, the authenticated caller is the user. */
    user_id: z.string().min(1).max(256).optional(),
  })
  .meta({ id: 'ChatRequest' });
export type ChatRequest = z.infer<typeof ChatRequest>;

export function registerChat(app: GatewayApp, deps: GenerationDeps): void {
  const doc = describeRoute({
    tags: ['generation'],
    summary: 'A minimal chat: {"token"} frames, or one JSON answer',
    security: API_KEY_SECURITY,
    parameters: generationHeaders(true),
    requestBody: jsonRequest(ChatRequest, 'read as JSON whatever the Content-Type (`curl -d` works)'),
    responses: generationResponses('seed', {
      body: SeedBody,
      frame: SeedFrame,
      accepted: z.union([JobAccepted, JobStatusBody]),
    }),
  });
  app.post('/chat', doc, async (c) => {
    const body = await readJsonBody(c, ChatRequest);
    return generate(
      c,
      deps,
      {
        model: body.model,
        messages: body.messages,
        params: { max_tokens: body.max_tokens, tools: body.tools, tool_choice: body.tool_choice },
        answer: { f: 'seed', stream: body.stream, async: prefersAsync(c.req.header('prefer')) },
      },
      body,
    );
  });
}
