import { isEmptyMessage } from '@llmgw/protocol';
import type { Context } from 'hono';
import type { GenerationRequest } from '../admission/generation-request.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps } from '../hono-app.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';

/** What a generation route needs: admission, the queue, and the relay's metrics and canceller. */
export type GenerationDeps = Pick<
  AppDeps,
  'defaultModel' | 'admission' | 'submitter' | 'metrics' | 'canceller'
>;

export type RouteInput = Omit<GenerationRequest, 'model' | 'requestId' | 'userId' | 'tier'> & {
  /** As the request named it; absent: DEFAULT_MODEL. */
  model: string | undefined;
};

/**
 * The first two steps of every generation route once its body is read, admit → submit (the route
 * then relays: relay/relay.ts). Before them: the model (default if none), one rule for an empty
 * conversation on every endpoint, and the authenticated caller as the user — a user id or tier in
 * the body or headers claims nothing.
 */
export async function submitFromRoute(
  c: Context<AppEnv>,
  deps: Pick<GenerationDeps, 'defaultModel' | 'admission' | 'submitter'>,
  input: RouteInput,
): Promise<{ chat: SubmittedChat; model: string }> {
  const model = input.model ?? deps.defaultModel;
  c.set('model', model);
  if ((input.kind ?? 'chat') === 'chat' && input.messages.every(isEmptyMessage)) {
    throw new ApiError('invalid_request', 'messages: every message is empty', { param: 'messages' });
  }
  const { userId, tier } = c.var.principal!;
  const req: GenerationRequest = { ...input, model, requestId: c.var.requestId, userId, tier };
  const admitted = await deps.admission.admit(req);
  const chat = await deps.submitter.submit(req, admitted);
  return { chat, model };
}
