import type { Delta, GenerationParams } from '@llmgw/protocol';
import OpenAI from 'openai';
import type { Backend, GenerateHooks, GenerateRequest, GenerateResult } from './backend.ts';
import { cancelled, mapBackendError } from './map-error.ts';

export interface OpenAIBackendOptions {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
}

type ChatParams = OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming;
type CompletionParams = OpenAI.Completions.CompletionCreateParamsStreaming;

/** Delta fields we relay; anything else a backend streams is reported as dropped. */
const RELAYED_DELTA_FIELDS = new Set([
  'role',
  'content',
  'reasoning_content',
  'reasoning',
  'tool_calls',
  'refusal',
]);

/**
 * The parameters every OpenAI-compatible endpoint takes, under their OpenAI names, only when set
 * (vLLM rejects some nulls). vLLM's own extensions (top_k, min_p, repetition_penalty,
 * chat_template_kwargs) ride along; OpenAI itself ignores what it does not know.
 */
function samplingOf(p: GenerationParams): Record<string, unknown> {
  const out: Record<string, unknown> = { max_tokens: p.max_tokens };
  for (const key of [
    'temperature',
    'top_p',
    'stop',
    'seed',
    'presence_penalty',
    'frequency_penalty',
    'user',
    'top_k',
    'min_p',
    'repetition_penalty',
  ] as const) {
    if (p[key] !== undefined) out[key] = p[key];
  }
  return out;
}

/** A chat request as the backend gets it: the messages unchanged, tools and friends passed on. */
export function toChatRequest(req: GenerateRequest): ChatParams {
  const p = req.params;
  const body: Record<string, unknown> = {
    model: req.model,
    messages: req.messages,
    stream: true,
    stream_options: { include_usage: true },
    ...samplingOf(p),
  };
  for (const key of [
    'tools',
    'tool_choice',
    'parallel_tool_calls',
    'response_format',
    'logprobs',
    'top_logprobs',
    'reasoning_effort',
    'chat_template_kwargs',
    'priority',
  ] as const) {
    if (p[key] !== undefined) body[key] = p[key];
  }
  return body as unknown as ChatParams;
}

/** A legacy completion request; `logprobs` there is the number of alternatives per token. */
export function toCompletionRequest(req: GenerateRequest): CompletionParams {
  const p = req.params;
  const body: Record<string, unknown> = {
    model: req.model,
    prompt: req.prompt ?? '',
    stream: true,
    stream_options: { include_usage: true },
    ...samplingOf(p),
  };
  if (p.logprobs) body.logprobs = p.top_logprobs ?? 0;
  if (p.echo !== undefined) body.echo = p.echo;
  return body as unknown as CompletionParams;
}

interface LegacyLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
}

/** Legacy completion logprobs as chat-style entries, the one form events carry. */
export function logprobsFromLegacy(lp: LegacyLogprobs | null | undefined): unknown[] | undefined {
  if (!lp?.tokens || lp.tokens.length === 0) return undefined;
  return lp.tokens.map((token, i) => ({
    token,
    logprob: lp.token_logprobs?.[i] ?? null,
    bytes: null,
    top_logprobs: Object.entries(lp.top_logprobs?.[i] ?? {}).map(([t, logprob]) => ({
      token: t,
      logprob,
      bytes: null,
    })),
  }));
}

interface StreamState {
  ttftMs: number | undefined;
  pieces: number;
  finishReason: string;
  stopSequence: string | undefined;
  usage: GenerateResult['usage'] | undefined;
}

/**
 * Any OpenAI-compatible server (vLLM, SGLang, TGI's Messages API, the simulator, OpenAI itself),
 * always in streaming mode, chat or legacy completions. Every delta field is relayed in the
 * order the backend sent it: content (with logprobs), reasoning (`reasoning_content`, or
 * `reasoning` as newer vLLM names it), tool-call fragments and refusals. The SDK's fetch keeps
 * connections alive between requests.
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
      const s: StreamState = {
        ttftMs: undefined,
        pieces: 0,
        finishReason: 'stop',
        stopSequence: undefined,
        usage: undefined,
      };
      const emit = (d: Delta) => {
        if (s.ttftMs === undefined) s.ttftMs = performance.now() - started;
        s.pieces++;
        hooks.onDelta(d);
      };
      try {
        if (req.kind === 'completion') {
          const stream = await client.completions.create(toCompletionRequest(req), { signal: hooks.signal });
          for await (const chunk of stream) {
            const choice = chunk.choices[0];
            if (choice) {
              const lp = logprobsFromLegacy(choice.logprobs as LegacyLogprobs | null);
              if (choice.text || lp)
                emit(lp ? { k: 'text', t: choice.text ?? '', lp } : { k: 'text', t: choice.text });
              endOfChoice(s, choice);
            }
            if (chunk.choices.length > 1) hooks.onDropped('choices[1+]');
            usageOf(s, chunk.usage);
          }
        } else {
          const stream = await client.chat.completions.create(toChatRequest(req), { signal: hooks.signal });
          for await (const chunk of stream) {
            const choice = chunk.choices[0];
            if (choice) {
              relayChatDelta(choice, emit, hooks);
              endOfChoice(s, choice);
            }
            if (chunk.choices.length > 1) hooks.onDropped('choices[1+]');
            usageOf(s, chunk.usage);
          }
        }
      } catch (err) {
        throw mapBackendError(err, hooks.signal, { promptTokens: 0, completionTokens: s.pieces });
      }
      // The SDK ends the iteration quietly when the signal aborts: that is a cancellation, not an answer.
      if (hooks.signal.aborted) throw cancelled({ promptTokens: 0, completionTokens: s.pieces });
      return {
        finishReason: s.finishReason,
        stopSequence: s.stopSequence,
        usage: s.usage ?? { promptTokens: 0, completionTokens: s.pieces },
        ttftMs: s.ttftMs,
      };
    },
  };
}

type ChatChoice = OpenAI.Chat.Completions.ChatCompletionChunk.Choice;

function relayChatDelta(choice: ChatChoice, emit: (d: Delta) => void, hooks: GenerateHooks): void {
  const delta = (choice.delta ?? {}) as Record<string, unknown>;
  // vLLM renamed reasoning_content to reasoning; a backend that sends both means one thing.
  const reasoning = delta.reasoning_content ?? delta.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') emit({ k: 'reasoning', t: reasoning });
  const lp = choice.logprobs?.content ?? undefined;
  const text = typeof delta.content === 'string' ? delta.content : '';
  if (text !== '' || (lp && lp.length > 0))
    emit(lp && lp.length > 0 ? { k: 'text', t: text, lp } : { k: 'text', t: text });
  if (typeof delta.refusal === 'string' && delta.refusal !== '') emit({ k: 'refusal', t: delta.refusal });
  const calls = delta.tool_calls;
  if (Array.isArray(calls)) {
    for (const c of calls as OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[]) {
      const d: Delta = { k: 'tool', i: c.index ?? 0 };
      if (c.id) d.id = c.id;
      if (c.function?.name) d.name = c.function.name;
      if (c.function?.arguments) d.args = c.function.arguments;
      if (d.id !== undefined || d.name !== undefined || d.args !== undefined) emit(d);
    }
  }
  for (const key in delta) {
    if (!RELAYED_DELTA_FIELDS.has(key) && delta[key] != null) hooks.onDropped(`delta.${key}`);
  }
}

function endOfChoice(s: StreamState, choice: { finish_reason?: string | null }): void {
  if (choice.finish_reason) s.finishReason = choice.finish_reason;
  // vLLM: the matched stop string (a number when a stop token id ended it).
  const stop = (choice as { stop_reason?: unknown }).stop_reason;
  if (typeof stop === 'string' && stop !== '') s.stopSequence = stop;
}

function usageOf(s: StreamState, usage: OpenAI.CompletionUsage | null | undefined): void {
  if (usage) s.usage = { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}
