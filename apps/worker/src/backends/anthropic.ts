import Anthropic from '@anthropic-ai/sdk';
import {
  type Backend,
  BackendError,
  type GenerateHooks,
  type GenerateRequest,
  type GenerateResult,
} from './backend.ts';
import { cancelled, mapBackendError } from './map-error.ts';

export interface AnthropicBackendOptions {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
}

/** Anthropic stop reasons in OpenAI's vocabulary, so clients see one set of finish reasons. */
export const FINISH_REASON: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
  pause_turn: 'stop',
};

type CreateParams = Anthropic.MessageCreateParamsStreaming;

/**
 * Builds a Messages API request from an OpenAI-shaped one: system (and developer) messages become
 * `system`, the rest keep their role; `stop` becomes `stop_sequences`, `user` becomes
 * `metadata.user_id`. `seed` and the penalties have no Anthropic equivalent and are dropped;
 * tool messages are refused (tool use is not relayed through the gateway).
 */
export function toAnthropicRequest(req: GenerateRequest): CreateParams {
  const system = req.messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => m.content)
    .join('\n\n');
  const messages: Anthropic.MessageParam[] = [];
  for (const m of req.messages) {
    if (m.role === 'system' || m.role === 'developer') continue;
    if (m.role === 'tool') {
      throw new BackendError(
        'backend_bad_request',
        'tool messages are not supported with the Anthropic backend',
      );
    }
    messages.push({ role: m.role, content: m.content });
  }
  if (messages.length === 0) {
    throw new BackendError(
      'backend_bad_request',
      'the Anthropic backend needs at least one user or assistant message',
    );
  }
  const p = req.params;
  return {
    model: req.model,
    max_tokens: p.max_tokens,
    messages,
    stream: true,
    ...(system && { system }),
    ...(p.stop !== undefined && { stop_sequences: p.stop }),
    ...(p.temperature !== undefined && { temperature: p.temperature }),
    ...(p.top_p !== undefined && { top_p: p.top_p }),
    ...(p.user !== undefined && { metadata: { user_id: p.user } }),
  };
}

/** Anthropic's Messages API in streaming mode (the original write-up's backend). */
export function createAnthropicBackend(opts: AnthropicBackendOptions): Backend {
  const client = new Anthropic({
    baseURL: opts.baseURL,
    apiKey: opts.apiKey ?? 'not-needed',
    maxRetries: 0,
    timeout: opts.timeoutMs,
  });
  return {
    provider: 'anthropic',
    async generate(req: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult> {
      const body = toAnthropicRequest(req);
      const started = performance.now();
      let ttftMs: number | undefined;
      let promptTokens = 0;
      let completionTokens = 0;
      let deltas = 0;
      let stopReason: string | null = null;
      try {
        const stream = await client.messages.create(body, { signal: hooks.signal });
        for await (const ev of stream) {
          switch (ev.type) {
            case 'message_start':
              promptTokens = ev.message.usage.input_tokens;
              break;
            case 'content_block_delta':
              if (ev.delta.type === 'text_delta' && ev.delta.text) {
                if (ttftMs === undefined) ttftMs = performance.now() - started;
                deltas++;
                hooks.onToken(ev.delta.text);
              }
              break;
            case 'message_delta':
              stopReason = ev.delta.stop_reason;
              completionTokens = ev.usage.output_tokens;
              break;
          }
        }
      } catch (err) {
        throw mapBackendError(err, hooks.signal, {
          promptTokens,
          completionTokens: completionTokens || deltas,
        });
      }
      // The SDK ends the iteration quietly when the signal aborts: that is a cancellation, not an answer.
      if (hooks.signal.aborted)
        throw cancelled({ promptTokens, completionTokens: completionTokens || deltas });
      return {
        finishReason: FINISH_REASON[stopReason ?? 'end_turn'] ?? 'stop',
        usage: { promptTokens, completionTokens: completionTokens || deltas },
        ttftMs,
      };
    },
  };
}
