import OpenAI from 'openai';
import type { Backend, GenerateHooks, GenerateRequest, GenerateResult } from './backend.ts';
import { cancelled, mapBackendError } from './map-error.ts';

export interface OpenAIBackendOptions {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
}

type CreateParams = OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming;

/**
 * Any OpenAI-compatible server (vLLM, TGI's Messages API, the simulator, OpenAI itself),
 * always in streaming mode. The SDK's fetch keeps connections alive between requests.
 */
export function createOpenAIBackend(opts: OpenAIBackendOptions): Backend {
  const client = new OpenAI({
    baseURL: opts.baseURL,
    // vLLM without --api-key accepts anything; the SDK insists on a value.
    apiKey: opts.apiKey ?? 'not-needed',
    // BullMQ owns retries; a retry here would hide backend 429s and double the load.
    maxRetries: 0,
    timeout: opts.timeoutMs,
  });

  return {
    provider: 'openai',
    async generate(req: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult> {
      const started = performance.now();
      let ttftMs: number | undefined;
      let completionTokens = 0;
      let finishReason = 'stop';
      let usage: GenerateResult['usage'] | undefined;
      const { params } = req;
      const body: CreateParams = {
        model: req.model,
        messages: req.messages as CreateParams['messages'],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: params.max_tokens,
        ...(params.temperature !== undefined && { temperature: params.temperature }),
        ...(params.top_p !== undefined && { top_p: params.top_p }),
        ...(params.stop !== undefined && { stop: params.stop }),
        ...(params.seed !== undefined && { seed: params.seed }),
        ...(params.presence_penalty !== undefined && { presence_penalty: params.presence_penalty }),
        ...(params.frequency_penalty !== undefined && { frequency_penalty: params.frequency_penalty }),
        ...(params.user !== undefined && { user: params.user }),
        ...(params.tools !== undefined && { tools: params.tools as CreateParams['tools'] }),
        ...(params.tool_choice !== undefined && {
          tool_choice: params.tool_choice as CreateParams['tool_choice'],
        }),
        ...(params.response_format !== undefined && {
          response_format: params.response_format as CreateParams['response_format'],
        }),
      };
      try {
        const stream = await client.chat.completions.create(body, { signal: hooks.signal });
        for await (const chunk of stream) {
          const choice = chunk.choices[0];
          const text = choice?.delta?.content;
          if (text) {
            if (ttftMs === undefined) ttftMs = performance.now() - started;
            completionTokens++;
            hooks.onToken(text);
          }
          if (choice?.finish_reason) finishReason = choice.finish_reason;
          if (chunk.usage) {
            usage = {
              promptTokens: chunk.usage.prompt_tokens,
              completionTokens: chunk.usage.completion_tokens,
            };
          }
        }
      } catch (err) {
        throw mapBackendError(err, hooks.signal, { promptTokens: 0, completionTokens });
      }
      // The SDK ends the iteration quietly when the signal aborts: that is a cancellation, not an answer.
      if (hooks.signal.aborted) throw cancelled({ promptTokens: 0, completionTokens });
      return { finishReason, usage: usage ?? { promptTokens: 0, completionTokens }, ttftMs };
    },
  };
}
