import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { estimatePromptTokens } from '../admission/quota.ts';
import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import {
  API_KEY_SECURITY,
  errorResponses,
  GUARDED,
  generationHeaders,
  generationResponses,
  json,
  jsonRequest,
} from '../openapi/describe.ts';
import { AnthropicMessage, AnthropicStreamEvent } from '../wire/anthropic.ts';
import { fromMessagesRequest, MessagesRequest } from '../wire/anthropic-request.ts';
import { type GenerationDeps, generate } from './generation.ts';

/**
 * `POST /v1/messages`: Anthropic's Messages API (Claude Code, the Anthropic SDKs, agent tools),
 * on the same queue, keys and limits, to any backend: the request becomes the gateway's
 * OpenAI-shaped job and the answer's deltas are rendered as Anthropic events. `x-api-key` and
 * `Authorization: Bearer` both authenticate; `anthropic-version` and `anthropic-beta` are
 * accepted and not interpreted.
 */
export function registerMessages(app: GatewayApp, deps: GenerationDeps): void {
  const doc = describeRoute({
    tags: ['generation'],
    summary: "Anthropic's Messages API, to any backend",
    description:
      '`anthropic-version` and `anthropic-beta` are accepted and not interpreted. Streaming: each frame has `event: <type>` and the data of that type.',
    security: API_KEY_SECURITY,
    parameters: generationHeaders(false),
    requestBody: jsonRequest(MessagesRequest),
    responses: generationResponses('anthropic', { body: AnthropicMessage, frame: AnthropicStreamEvent }),
  });
  app.post('/v1/messages', doc, async (c) => {
    const body = await readJsonBody(c, MessagesRequest);
    const req = fromMessagesRequest(body);
    return generate(
      c,
      deps,
      {
        model: req.model,
        messages: req.messages,
        params: req.params,
        answer: { f: 'messages', stream: req.stream === true },
      },
      body,
    );
  });

  // Claude Code and LangChain's ChatAnthropic ask before they send. No tokenizer here: the same
  // estimate the daily quota reserves (~4 characters a token, images at a flat rate), which errs
  // high; the backend's own count settles the quota after each job.
  const countDoc = describeRoute({
    tags: ['generation'],
    summary: "The prompt's token estimate (the daily quota's: ~4 characters a token), no tokenizer",
    security: API_KEY_SECURITY,
    requestBody: jsonRequest(CountTokensRequest),
    responses: {
      200: { description: 'the estimate', content: json(TokenCount) },
      ...errorResponses('anthropic', [400, 413, ...GUARDED]),
    },
  });
  app.post('/v1/messages/count_tokens', countDoc, async (c) => {
    const body = await readJsonBody(c, CountTokensRequest);
    const req = fromMessagesRequest({ ...body, max_tokens: 1, stream: false });
    return c.json({ input_tokens: estimatePromptTokens(req) } satisfies z.input<typeof TokenCount>);
  });
}

/** A Messages request without `max_tokens`, as `count_tokens` takes it. */
const CountTokensRequest = MessagesRequest.omit({ max_tokens: true, stream: true }).meta({
  id: 'CountTokensRequest',
});
const TokenCount = z.object({ input_tokens: z.number().int() }).meta({ id: 'TokenCount' });
