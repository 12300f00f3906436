import { estimatePromptTokens } from '../admission/quota.ts';
import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
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
  app.post('/v1/messages', async (c) => {
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
  app.post('/v1/messages/count_tokens', async (c) => {
    const body = await readJsonBody(c, CountTokensRequest);
    const req = fromMessagesRequest({ ...body, max_tokens: 1, stream: false });
    return c.json({ input_tokens: estimatePromptTokens(req) });
  });
}

/** A Messages request without `max_tokens`, as `count_tokens` takes it. */
const CountTokensRequest = MessagesRequest.omit({ max_tokens: true, stream: true });
