import { z } from 'zod';
import type { AppDeps, GatewayApp } from '../app.ts';
import { collectResponse, type FrameFormat, relaySSE } from '../jobs/relay.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import { errorFrame } from '../render-error.ts';

/** `POST /chat`: the seed's request and its frame format. */
export const ChatRequest = z.object({
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'user', 'assistant']),
        content: z.string(),
      }),
    )
    .min(1, 'must contain at least one message'),
  model: z.string().min(1).optional(),
  max_tokens: z.number().int().min(1).max(4096).default(1024),
  stream: z.boolean().default(true),
  /** The write-up's field; accepted for compatibility, the authenticated caller is the user. */
  user_id: z.string().min(1).max(256).optional(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

/** Seed frames: `data: {"token":"…"}` per token, then `data: [DONE]`; errors as `data: {"error":{…}}`. */
const seedFrames = (requestId: string): FrameFormat => ({
  open: () => '',
  tokens: (texts) => {
    let out = '';
    for (const token of texts) out += `data: ${JSON.stringify({ token })}\n\n`;
    return out;
  },
  done: () => 'data: [DONE]\n\n',
  error: (err) => errorFrame(err, requestId),
});

export function registerChat(app: GatewayApp, deps: AppDeps): void {
  app.post('/chat', async (c) => {
    const body = await readJsonBody(c, ChatRequest);
    // The authenticated caller; a user id or tier in the body or headers claims nothing.
    const { userId, tier } = c.var.principal!;
    const model = body.model ?? deps.defaultModel;
    c.set('model', model);
    const chat = await deps.chat.submit({
      model,
      messages: body.messages,
      params: { max_tokens: body.max_tokens },
      requestId: c.var.requestId,
      requestStart: c.var.startedAt,
      userId,
      tier,
    });
    if (body.stream) return relaySSE(c, chat, deps.chat, seedFrames(c.var.requestId), deps.metrics);

    const { text, done } = await collectResponse(c, chat, deps.chat);
    const usage = {
      prompt_tokens: done.usage.promptTokens,
      completion_tokens: done.usage.completionTokens,
      total_tokens: done.usage.promptTokens + done.usage.completionTokens,
    };
    return c.json({ content: text, model, finish_reason: done.finishReason, usage });
  });
}
