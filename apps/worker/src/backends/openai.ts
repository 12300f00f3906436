import type { ChatMessage, Delta, GenerationParams } from '@llmgw/protocol';
import type { Backend, GenerateHooks, GenerateRequest, GenerateResult } from './backend.ts';
import { cancelled, mapBackendError } from './map-error.ts';
import { ssePost } from './sse-post.ts';

export interface OpenAIBackendOptions {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
  /**
   * BACKEND_CONTINUOUS_USAGE: ask for vLLM's `continuous_usage_stats`, usage in every chunk, so a
   * stream cut short still has the backend's own counts (else: no prompt count, and the chunks).
   */
  continuousUsage?: boolean;
}

/** `stream_options`: the usage at the end, or (vLLM, SGLang) in every chunk. */
const streamOptions = (continuousUsage: boolean | undefined) =>
  continuousUsage ? { include_usage: true, continuous_usage_stats: true } : { include_usage: true };

type RequestBody = Record<string, unknown>;

/** The parts of a streamed chunk (chat or legacy completion) the gateway reads. */
interface StreamChunk {
  choices?: StreamChoice[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}
interface StreamChoice {
  delta?: Record<string, unknown>;
  text?: string;
  logprobs?: { content?: unknown[] | null } | LegacyLogprobs | null;
  finish_reason?: string | null;
  stop_reason?: unknown;
}
interface ToolCallFragment {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

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

/**
 * A chat request as the backend gets it: the messages unchanged but for `thinking_blocks`,
 * tools and friends passed on.
 */
export function toChatRequest(req: GenerateRequest, continuousUsage?: boolean): RequestBody {
  const p = req.params;
  const body: Record<string, unknown> = {
    model: req.model,
    messages: withoutSignedThinking(req.messages),
    stream: true,
    stream_options: streamOptions(continuousUsage),
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
  return body;
}

/**
 * The messages without their `thinking_blocks`: Anthropic's signed thinking, which only Anthropic
 * reads (the reasoning text is still there, as `reasoning_content`). The same array when no
 * message has any, as nearly always.
 */
function withoutSignedThinking(messages: ChatMessage[]): ChatMessage[] {
  if (!messages.some((m) => m.role === 'assistant' && m.thinking_blocks != null)) return messages;
  return messages.map((m) => {
    if (m.role !== 'assistant' || m.thinking_blocks == null) return m;
    const { thinking_blocks: _, ...rest } = m;
    return rest;
  });
}

/** A legacy completion request; `logprobs` there is the number of alternatives per token. */
export function toCompletionRequest(req: GenerateRequest, continuousUsage?: boolean): RequestBody {
  const p = req.params;
  const body: Record<string, unknown> = {
    model: req.model,
    prompt: req.prompt ?? '',
    stream: true,
    stream_options: streamOptions(continuousUsage),
    ...samplingOf(p),
  };
  if (p.logprobs) body.logprobs = p.top_logprobs ?? 0;
  if (p.echo !== undefined) body.echo = p.echo;
  return body;
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
 * `reasoning` as newer vLLM names it), tool-call fragments and refusals. The stream is read by
 * sse-post.ts (node:http, keep-alive, no SDK: this is the worker's hot path); `timeoutMs`
 * (LLM_TIMEOUT_MS) bounds the whole generation.
 */
export function createOpenAIBackend(opts: OpenAIBackendOptions): Backend {
  const base = opts.baseURL.replace(/\/+$/, '');
  const urls = { chat: new URL(`${base}/chat/completions`), completion: new URL(`${base}/completions`) };
  // vLLM without --api-key accepts anything, and then so do we.
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};

  return {
    provider: 'openai',
    baseURL: base,
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
      const chat = req.kind !== 'completion';
      // Cut short: the backend's last count when it sends one per chunk (continuousUsage), else
      // no prompt count (the worker charges the api's estimate) and the chunks received.
      const partial = () => s.usage ?? { promptTokens: 0, completionTokens: s.pieces };
      try {
        await ssePost({
          url: chat ? urls.chat : urls.completion,
          headers,
          body: JSON.stringify(
            chat ? toChatRequest(req, opts.continuousUsage) : toCompletionRequest(req, opts.continuousUsage),
          ),
          signal: hooks.signal,
          timeoutMs: opts.timeoutMs,
          partial,
          onData(data) {
            const chunk = data as StreamChunk;
            // Before the deltas: a cancel that one of them sets off reads the count of this chunk.
            usageOf(s, chunk.usage);
            const choices = chunk.choices ?? [];
            const choice = choices[0];
            if (choice) {
              if (chat) relayChatDelta(choice, emit, hooks);
              else relayCompletionText(choice, emit);
              endOfChoice(s, choice);
            }
            if (choices.length > 1) hooks.onDropped('choices[1+]');
          },
        });
      } catch (err) {
        throw mapBackendError(err, hooks.signal, partial());
      }
      if (hooks.signal.aborted) throw cancelled(partial());
      return {
        finishReason: s.finishReason,
        stopSequence: s.stopSequence,
        usage: s.usage ?? partial(),
        ttftMs: s.ttftMs,
      };
    },
  };
}

function relayCompletionText(choice: StreamChoice, emit: (d: Delta) => void): void {
  const lp = logprobsFromLegacy(choice.logprobs as LegacyLogprobs | null);
  if (choice.text || lp)
    emit(lp ? { k: 'text', t: choice.text ?? '', lp } : { k: 'text', t: choice.text ?? '' });
}

function relayChatDelta(choice: StreamChoice, emit: (d: Delta) => void, hooks: GenerateHooks): void {
  const delta = (choice.delta ?? {}) as Record<string, unknown>;
  // vLLM renamed reasoning_content to reasoning; a backend that sends both means one thing.
  const reasoning = delta.reasoning_content ?? delta.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') emit({ k: 'reasoning', t: reasoning });
  const lp = (choice.logprobs as { content?: unknown[] | null } | null | undefined)?.content ?? undefined;
  const text = typeof delta.content === 'string' ? delta.content : '';
  if (text !== '' || (lp && lp.length > 0))
    emit(lp && lp.length > 0 ? { k: 'text', t: text, lp } : { k: 'text', t: text });
  if (typeof delta.refusal === 'string' && delta.refusal !== '') emit({ k: 'refusal', t: delta.refusal });
  const calls = delta.tool_calls;
  if (Array.isArray(calls)) {
    for (const c of calls as ToolCallFragment[]) {
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

function usageOf(s: StreamState, usage: StreamChunk['usage']): void {
  if (usage) s.usage = { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}
