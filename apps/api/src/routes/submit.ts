import { isEmptyMessage } from '@llmgw/protocol';
import type { Context } from 'hono';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps } from '../hono-app.ts';
import type { ChatRequestInput } from '../jobs/chat-service.ts';
import type { SubmittedChat } from '../jobs/submitted-chat.ts';

export type RouteInput = Omit<
  ChatRequestInput,
  'model' | 'requestId' | 'requestStart' | 'userId' | 'tier'
> & {
  /** As the request named it; absent: DEFAULT_MODEL. */
  model: string | undefined;
};

/**
 * What every generation route does once its body is read: the model (default if none), one rule
 * for an empty conversation on every endpoint, and admission as the authenticated caller — a
 * user id or tier in the body or headers claims nothing.
 */
export async function submitFromRoute(
  c: Context<AppEnv>,
  deps: Pick<AppDeps, 'chat' | 'defaultModel'>,
  input: RouteInput,
): Promise<{ chat: SubmittedChat; model: string }> {
  const model = input.model ?? deps.defaultModel;
  c.set('model', model);
  if ((input.kind ?? 'chat') === 'chat' && input.messages.every(isEmptyMessage)) {
    throw new ApiError('invalid_request', 'messages: every message is empty', { param: 'messages' });
  }
  const { userId, tier } = c.var.principal!;
  const chat = await deps.chat.submit({
    ...input,
    model,
    requestId: c.var.requestId,
    requestStart: c.var.startedAt,
    userId,
    tier,
  });
  return { chat, model };
}
