import Anthropic from '@anthropic-ai/sdk';
import { type ChatMessage, type Delta, finishReasonFromAnthropic, textOf } from '@llmgw/protocol';
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

type CreateParams = Anthropic.MessageCreateParamsStreaming;
type Block = Anthropic.ContentBlockParam;
type Turn = { role: 'user' | 'assistant'; content: string | Block[] };

const badRequest = (message: string) => new BackendError('backend_bad_request', message);

/**
 * Builds a Messages API request from the gateway's OpenAI-shaped one.
 *
 * - system and developer messages, wherever they are, become `system` (joined with blank lines);
 * - user parts become text and image blocks (a `data:` URL → a base64 source, http(s) → a url
 *   source); audio input is refused, Anthropic has none;
 * - assistant text and refusals become text blocks, `tool_calls` become `tool_use` blocks (the
 *   arguments parsed: Anthropic wants the input object). With thinking on, the message's
 *   `thinking_blocks` (signed thinking and redacted_thinking, as Anthropic gave them) come first
 *   in its turn, unchanged: Anthropic refuses a tool loop whose last assistant turn does not start
 *   with its thinking. With thinking off they are not sent (Anthropic does not need them, and
 *   refuses thinking in a final assistant turn then). `reasoning_content` is never sent: a
 *   thinking block needs the signature Anthropic gave it, which OpenAI clients do not keep;
 * - tool messages become `tool_result` blocks of a user message;
 * - consecutive messages of one role are merged, since Anthropic requires user and assistant to
 *   alternate (several tool results after one assistant turn are one user message);
 * - empty messages are left out (Anthropic refuses empty content);
 * - a legacy completion's prompt is one user message.
 *
 * Parameters: `stop` → `stop_sequences`, `user` → `metadata.user_id`, tools and `tool_choice` in
 * Anthropic's shapes, `parallel_tool_calls: false` → `disable_parallel_tool_use`; `max_tokens`,
 * temperature, top_p, top_k and `thinking` as they are. `tool_choice` is only sent with tools
 * (Anthropic refuses it alone). A structured output (`response_format` `json_schema` or
 * `json_object`) becomes one tool the model is forced to call: see {@link structuredOutputTool}.
 * Dropped, having no Anthropic equivalent: `seed`, the presence and frequency penalties,
 * `logprobs`/`top_logprobs`, `reasoning_effort`, `min_p`, `repetition_penalty`,
 * `chat_template_kwargs` and `echo`.
 */
export function toAnthropicRequest(req: GenerateRequest): CreateParams {
  const system: string[] = [];
  const turns: Turn[] = [];
  const thinks = req.params.thinking !== undefined && req.params.thinking.type !== 'disabled';
  if (req.kind === 'completion') appendTurn(turns, 'user', req.prompt ?? '');
  else {
    for (const m of req.messages) {
      const content = contentOf(m, thinks);
      if (content.role === 'system') {
        if (content.text !== '') system.push(content.text);
      } else appendTurn(turns, content.role, content.content);
    }
  }
  if (turns.length === 0) {
    throw badRequest('the Anthropic backend needs at least one user or assistant message');
  }
  const p = req.params;
  const tools = p.tools?.map(
    (t): Anthropic.Tool => ({
      name: t.function.name,
      ...(t.function.description !== undefined && { description: t.function.description }),
      input_schema: (t.function.parameters ?? {
        type: 'object',
        properties: {},
      }) as Anthropic.Tool.InputSchema,
    }),
  );
  const hasTools = tools !== undefined && tools.length > 0;
  const structured = structuredOutputTool(p);
  const toolChoice = structured
    ? ({ type: 'tool', name: structured.name } as const)
    : hasTools
      ? toolChoiceOf(p.tool_choice, p.parallel_tool_calls)
      : undefined;
  return {
    model: req.model,
    max_tokens: p.max_tokens,
    messages: turns,
    stream: true,
    ...(system.length > 0 && { system: system.join('\n\n') }),
    ...(p.stop !== undefined && { stop_sequences: p.stop }),
    ...(p.temperature !== undefined && { temperature: p.temperature }),
    ...(p.top_p !== undefined && { top_p: p.top_p }),
    ...(p.top_k !== undefined && { top_k: p.top_k }),
    ...(p.user !== undefined && { metadata: { user_id: p.user } }),
    ...(p.thinking !== undefined && { thinking: p.thinking as Anthropic.ThinkingConfigParam }),
    ...(hasTools && { tools }),
    ...(structured && { tools: [structured] }),
    ...(toolChoice !== undefined && { tool_choice: toolChoice }),
  };
}

/** The tool's name for `json_object`, which has no name of its own. */
export const JSON_OBJECT_TOOL = 'json_object';

/**
 * A structured output as Anthropic does it without a native `response_format` on every model: one
 * tool whose `input_schema` is the schema, which the model is forced to call (`tool_choice`
 * `{type:'tool'}`); its input is then the answer (see {@link AnthropicStreamReader}), as LangChain
 * and instructor do it. `json_schema` → a tool named after it, with its description; `json_object`
 * → a tool `json_object` taking any object. `strict` is not sent: Anthropic's strict tool use
 * takes a narrower schema subset, on recent models only. Undefined for `text` or no format.
 *
 * Refused (`backend_bad_request`) where the mapping cannot hold: with `tools` (the answer would be
 * either a tool call or the structured output, and Anthropic forces one tool), with extended
 * thinking (Anthropic refuses a forced tool then), or a schema whose root is not an object
 * (Anthropic's `input_schema` must be one).
 */
export function structuredOutputTool(p: GenerateRequest['params']): Anthropic.Tool | undefined {
  const format = p.response_format;
  if (format === undefined || format.type === 'text') return undefined;
  if (p.tools !== undefined && p.tools.length > 0) {
    throw badRequest('response_format cannot be combined with tools on the Anthropic backend');
  }
  if (p.thinking !== undefined && p.thinking.type !== 'disabled') {
    throw badRequest('response_format cannot be combined with extended thinking on the Anthropic backend');
  }
  if (format.type === 'json_object') {
    return {
      name: JSON_OBJECT_TOOL,
      description: 'Give your answer as a JSON object: the input of this tool.',
      input_schema: { type: 'object' },
    };
  }
  const spec = format.json_schema as { name: string; description?: unknown; schema?: unknown };
  const schema = spec.schema ?? { type: 'object' };
  if (typeof schema !== 'object' || schema === null || (schema as { type?: unknown }).type !== 'object') {
    throw badRequest(
      'the Anthropic backend needs a response_format json_schema whose root is an object ({"type":"object", ...})',
    );
  }
  return {
    name: spec.name,
    description:
      typeof spec.description === 'string' && spec.description !== ''
        ? spec.description
        : 'Give your answer as the input of this tool, following its schema.',
    input_schema: schema as Anthropic.Tool.InputSchema,
  };
}

/** Appends a turn, merged into the previous one when the role repeats. */
function appendTurn(turns: Turn[], role: Turn['role'], content: string | Block[]): void {
  if (content.length === 0) return;
  const last = turns[turns.length - 1];
  if (last?.role === role) last.content = [...asBlocks(last.content), ...asBlocks(content)];
  else turns.push({ role, content });
}

const asBlocks = (c: string | Block[]): Block[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);

/**
 * One message in Anthropic terms: system text, or a turn's blocks (a plain string stays a string).
 * `thinks`: an assistant message's signed thinking goes first in its turn.
 */
function contentOf(m: ChatMessage, thinks: boolean): Turn | { role: 'system'; text: string } {
  switch (m.role) {
    case 'system':
    case 'developer':
      return { role: 'system', text: textOf(m.content) };
    case 'user': {
      if (typeof m.content === 'string') return { role: 'user', content: m.content };
      const blocks: Block[] = [];
      for (const part of m.content) {
        if (part.type === 'text') pushText(blocks, part.text);
        else if (part.type === 'image_url') blocks.push(imageBlock(part.image_url.url));
        else throw badRequest('audio input is not supported by the Anthropic backend');
      }
      return { role: 'user', content: blocks };
    }
    case 'assistant': {
      const calls = m.tool_calls ?? [];
      const thoughts = thinks ? (m.thinking_blocks ?? []) : [];
      if (typeof m.content === 'string' && calls.length === 0 && !m.refusal && thoughts.length === 0) {
        return { role: 'assistant', content: m.content };
      }
      // Copies: the request must not share objects with the job it was made from.
      const blocks: Block[] = thoughts.map((b) => ({ ...b }));
      if (typeof m.content === 'string') pushText(blocks, m.content);
      else {
        for (const part of m.content ?? []) pushText(blocks, part.type === 'text' ? part.text : part.refusal);
      }
      if (m.refusal) pushText(blocks, m.refusal);
      for (const call of calls) {
        blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call) });
      }
      return { role: 'assistant', content: blocks };
    }
    case 'tool': {
      const text = textOf(m.content);
      const result: Block = {
        type: 'tool_result',
        tool_use_id: m.tool_call_id,
        ...(text !== '' && { content: text }),
      };
      return { role: 'user', content: [result] };
    }
  }
}

/** Anthropic refuses empty text blocks; an empty part carries nothing anyway. */
function pushText(blocks: Block[], text: string): void {
  if (text !== '') blocks.push({ type: 'text', text });
}

function imageBlock(url: string): Anthropic.ImageBlockParam {
  const data = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/is.exec(url);
  if (data) {
    const media_type = data[1]!.toLowerCase() as Anthropic.Base64ImageSource['media_type'];
    return { type: 'image', source: { type: 'base64', media_type, data: data[2]! } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw badRequest('image URLs must be http(s) or base64 data: URLs');
}

/** The arguments of an OpenAI tool call as Anthropic's input object (blank: no arguments). */
function toolInput(call: { id: string; function: { arguments: string } }): Record<string, unknown> {
  if (call.function.arguments.trim() === '') return {};
  let input: unknown;
  try {
    input = JSON.parse(call.function.arguments);
  } catch {
    throw badRequest(`the arguments of tool call ${call.id} are not valid JSON`);
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw badRequest(`the arguments of tool call ${call.id} are not a JSON object`);
  }
  return input as Record<string, unknown>;
}

function toolChoiceOf(
  choice: GenerateRequest['params']['tool_choice'],
  parallel: boolean | undefined,
): Anthropic.ToolChoice | undefined {
  const serial = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return parallel === false ? { type: 'auto', ...serial } : undefined;
  if (choice === 'none') return { type: 'none' };
  if (choice === 'auto') return { type: 'auto', ...serial };
  if (choice === 'required') return { type: 'any', ...serial };
  return { type: 'tool', name: choice.function.name, ...serial };
}

/**
 * Turns the events of one streamed answer into deltas. Anthropic numbers content blocks across
 * kinds; tool calls are numbered among themselves (`i` = 0, 1, … in this answer), as OpenAI does.
 * A thinking block's signature (its `signature_delta`, or the `signature` a block starts with when
 * it comes whole) is a reasoning delta with `sig`, which ends that block for the api; a
 * `redacted_thinking` block is one reasoning delta with `redacted` (its data). Neither counts as a
 * completion token. Blocks and deltas the gateway does not relay (server tool use, citations, any
 * future type) are reported to `onDropped` once each, and their later deltas skipped quietly.
 *
 * With `structured` (the name of a structured output's tool, {@link structuredOutputTool}), that
 * tool's input is the answer: its JSON pieces become text deltas, and its `tool_use` stop is
 * finish reason `stop`, so the client sees the content a `response_format` answer has.
 */
export class AnthropicStreamReader {
  promptTokens = 0;
  /** Anthropic's count, once message_delta has said it. */
  outputTokens: number | undefined;
  /** Deltas relayed: the completion tokens when Anthropic never gave a count. */
  deltas = 0;
  stopReason: string | null = null;
  stopSequence: string | undefined;
  /**
   * Anthropic block index → what it is: text, thinking, redacted thinking, a tool call's `i`, the
   * structured output, or dropped.
   */
  private readonly blocks = new Map<number, 'text' | 'thinking' | 'redacted' | 'json' | 'dropped' | number>();
  private tools = 0;

  constructor(
    private readonly hooks: Pick<GenerateHooks, 'onDelta' | 'onDropped'>,
    private readonly structured?: string,
  ) {}

  get completionTokens(): number {
    return this.outputTokens || this.deltas;
  }

  /** The answer's finish reason in OpenAI terms; a structured output's forced tool call is `stop`. */
  get finishReason(): string {
    if (this.structured !== undefined && this.stopReason === 'tool_use') return 'stop';
    return finishReasonFromAnthropic(this.stopReason);
  }

  read(ev: Anthropic.RawMessageStreamEvent): void {
    switch (ev.type) {
      case 'message_start':
        this.promptTokens = ev.message.usage.input_tokens;
        break;
      case 'content_block_start':
        this.start(ev.index, ev.content_block);
        break;
      case 'content_block_delta':
        this.delta(ev.index, ev.delta);
        break;
      case 'message_delta':
        this.stopReason = ev.delta.stop_reason;
        if (ev.delta.stop_sequence) this.stopSequence = ev.delta.stop_sequence;
        this.outputTokens = ev.usage.output_tokens;
        break;
    }
  }

  private start(index: number, block: Anthropic.RawContentBlockStartEvent['content_block']): void {
    switch (block.type) {
      case 'text':
        this.blocks.set(index, 'text');
        if (block.text) this.emit({ k: 'text', t: block.text });
        break;
      case 'thinking':
        this.blocks.set(index, 'thinking');
        if (block.signature) {
          this.hooks.onDelta({ k: 'reasoning', t: block.thinking, sig: block.signature });
          if (block.thinking) this.deltas++;
        } else if (block.thinking) this.emit({ k: 'reasoning', t: block.thinking });
        break;
      case 'redacted_thinking':
        this.blocks.set(index, 'redacted');
        this.hooks.onDelta({ k: 'reasoning', t: '', redacted: block.data });
        break;
      case 'tool_use': {
        if (this.structured !== undefined && block.name === this.structured) {
          this.blocks.set(index, 'json');
          break;
        }
        const i = this.tools++;
        this.blocks.set(index, i);
        // The input arrives as input_json_delta pieces; the block's own `input` is `{}`.
        this.emit({ k: 'tool', i, id: block.id, name: block.name, args: '' });
        break;
      }
      default:
        this.blocks.set(index, 'dropped');
        this.hooks.onDropped(`content_block.${(block as { type: string }).type}`);
    }
  }

  private delta(index: number, delta: Anthropic.RawContentBlockDelta): void {
    const block = this.blocks.get(index);
    // A redacted block is whole at its start: nothing may follow it.
    if (block === 'dropped' || block === 'redacted') return;
    switch (delta.type) {
      case 'text_delta':
        if (delta.text) this.emit({ k: 'text', t: delta.text });
        return;
      case 'thinking_delta':
        if (delta.thinking) this.emit({ k: 'reasoning', t: delta.thinking });
        return;
      case 'input_json_delta':
        if (!delta.partial_json) return;
        if (block === 'json') this.emit({ k: 'text', t: delta.partial_json });
        else if (typeof block === 'number') this.emit({ k: 'tool', i: block, args: delta.partial_json });
        return;
      case 'signature_delta':
        // Proves the thinking block to Anthropic when it is sent back in a later turn.
        if (block === 'thinking' && delta.signature) {
          this.hooks.onDelta({ k: 'reasoning', t: '', sig: delta.signature });
        }
        return;
      default:
        this.hooks.onDropped(`delta.${(delta as { type: string }).type}`);
    }
  }

  private emit(d: Delta): void {
    this.deltas++;
    this.hooks.onDelta(d);
  }
}

/** Anthropic's Messages API in streaming mode. */
export function createAnthropicBackend(opts: AnthropicBackendOptions): Backend {
  const client = new Anthropic({
    baseURL: opts.baseURL,
    apiKey: opts.apiKey ?? 'not-needed',
    // BullMQ owns retries; a retry here would hide backend 429s and double the load.
    maxRetries: 0,
    timeout: opts.timeoutMs,
  });
  return {
    provider: 'anthropic',
    baseURL: opts.baseURL,
    async generate(req: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult> {
      const body = toAnthropicRequest(req);
      const started = performance.now();
      let ttftMs: number | undefined;
      const reader = new AnthropicStreamReader(
        {
          onDelta(d) {
            if (ttftMs === undefined) ttftMs = performance.now() - started;
            hooks.onDelta(d);
          },
          onDropped: (what) => hooks.onDropped(what),
        },
        structuredOutputTool(req.params)?.name,
      );
      const usage = () => ({ promptTokens: reader.promptTokens, completionTokens: reader.completionTokens });
      try {
        const stream = await client.messages.create(body, { signal: hooks.signal });
        for await (const ev of stream) reader.read(ev);
      } catch (err) {
        throw mapBackendError(err, hooks.signal, usage());
      }
      // The SDK ends the iteration quietly when the signal aborts: that is a cancellation, not an answer.
      if (hooks.signal.aborted) throw cancelled(usage());
      return {
        finishReason: reader.finishReason,
        ...(reader.stopSequence !== undefined && { stopSequence: reader.stopSequence }),
        usage: usage(),
        ttftMs,
      };
    },
  };
}
