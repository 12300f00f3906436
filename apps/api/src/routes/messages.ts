import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import { collectResponse, relaySSE } from '../relay/relay.ts';
import { anthropicBody, anthropicFrames } from '../wire/anthropic.ts';
import { fromMessagesRequest, MessagesRequest } from '../wire/anthropic-request.ts';
import { type GenerationDeps, submitFromRoute } from './generation.ts';

/**
 * `POST /v1/messages`: Anthropic's Messages API (Claude Code, the Anthropic SDKs, agent tools),
 * on the same queue, keys and limits, to any backend: the request becomes the gateway's
 * OpenAI-shaped job and the answer's deltas are rendered as Anthropic events. `x-api-key` and
 * `Authorization: Bearer` both authenticate; `anthropic-version` and `anthropic-beta` are
 * accepted and not interpreted.
 */
export function registerMessages(app: GatewayApp, deps: GenerationDeps): void {
  app.post('/v1/messages', async (c) => {
    const req = fromMessagesRequest(await readJsonBody(c, MessagesRequest));
    const { chat, model } = await submitFromRoute(c, deps, {
      model: req.model,
      messages: req.messages,
      params: req.params,
    });
    const idn = { id: `msg_${chat.jobId.replaceAll('-', '')}`, model };
    if (req.stream) return relaySSE(c, chat, deps, anthropicFrames(idn, c.var.requestId));
    const { transcript, done } = await collectResponse(c, chat, deps);
    return c.json(anthropicBody(idn, transcript, done));
  });
}
