import type { ChatMessage, ContentPart, GenerationParams, SignedThinking, ToolCall } from '@llmgw/protocol';
import { z } from 'zod';
import { documentInput } from '../openapi/input-doc.ts';
import { MAX_COMPLETION_TOKENS } from './openai-request.ts';

/**
 * `POST /v1/messages` requests (Anthropic's Messages API, as Claude Code and the Anthropic SDKs
 * send them) and their translation into the gateway's OpenAI-shaped job. Blocks are loose objects:
 * fields such as `cache_control` or `citations` are accepted and not relayed. A block, tool or
 * option the gateway cannot carry is refused with a message naming it, never silently ignored.
 * Unknown top-level fields are ignored, as Anthropic's SDK-level extras (betas) are.
 */

/** A discriminated union whose unknown `type` names itself and what is supported there. */
const blocksOf = <const T extends readonly [z.core.$ZodTypeDiscriminable, ...z.core.$ZodTypeDiscriminable[]]>(
  options: T,
  where: string,
) => {
  const blocks = z.array(
    z.discriminatedUnion('type', options, {
      error: (iss) =>
        iss.code === 'invalid_union' && iss.note === 'No matching discriminator'
          ? `content block type ${JSON.stringify((iss.input as { type?: unknown } | undefined)?.type)} is not supported in ${where} (supported: ${(iss as { options?: unknown[] }).options?.join(', ')})`
          : undefined,
    }),
    {
      error: (iss) =>
        iss.code === 'invalid_type' ? 'must be a string or an array of content blocks' : undefined,
    },
  );
  return documentInput(
    z.preprocess(
      // A plain string is one text block: one shape to validate, and errors keep their path
      // (a union of string and array would report only "Invalid input" on `content`).
      (v) => (typeof v === 'string' ? [{ type: 'text', text: v }] : v),
      blocks,
    ),
    z.union([z.string().meta({ description: 'one text block' }), blocks]),
  );
};

const TextBlock = z.looseObject({ type: z.literal('text'), text: z.string() });

/** The media type must fit the `data:` URL the protocol accepts. */
const ImageBlock = z.looseObject({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.looseObject({
      type: z.literal('base64'),
      media_type: z.string().regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a media type such as image/png'),
      data: z.string().min(1),
    }),
    z.looseObject({
      type: z.literal('url'),
      url: z.string().regex(/^https?:\/\//i, 'must be an http(s) URL'),
    }),
  ]),
});

const ToolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
});

const ToolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: blocksOf([TextBlock, ImageBlock], 'tool_result content').optional(),
  is_error: z.boolean().optional(),
});

const ThinkingBlock = z.looseObject({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string().optional(),
});

const RedactedThinkingBlock = z.looseObject({ type: z.literal('redacted_thinking'), data: z.string() });

const UserTurn = z.object({
  role: z.literal('user'),
  content: blocksOf([TextBlock, ImageBlock, ToolResultBlock], 'user messages'),
});
const AssistantTurn = z.object({
  role: z.literal('assistant'),
  content: blocksOf([TextBlock, ToolUseBlock, ThinkingBlock, RedactedThinkingBlock], 'assistant messages'),
});

/**
 * Custom tools only: a server tool (`web_search_…`, `bash_…`, `text_editor_…`) runs inside
 * Anthropic's API, which the gateway's backends are not. The type is checked first, so a server
 * tool is told so, not that it lacks `input_schema`.
 */
const CustomTool = z.looseObject({
  name: z.string().min(1).max(64),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
});
const Tool = documentInput(
  z
    .looseObject({ type: z.unknown().optional() })
    .superRefine((t, ctx) => {
      if (t.type != null && t.type !== 'custom') {
        ctx.addIssue({
          code: 'custom',
          path: ['type'],
          message: `tool type ${JSON.stringify(t.type)} is not supported: only custom tools (name, description, input_schema) can be relayed`,
        });
      }
    })
    .pipe(CustomTool),
  CustomTool.extend({ type: z.literal('custom').nullish() }),
);

const parallel = { disable_parallel_tool_use: z.boolean().optional() };
const ToolChoice = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('auto'), ...parallel }),
  z.looseObject({ type: z.literal('any'), ...parallel }),
  z.looseObject({ type: z.literal('none') }),
  z.looseObject({ type: z.literal('tool'), name: z.string().min(1), ...parallel }),
]);

export const MessagesRequest = z
  .object({
    /** Absent: the gateway's default model. */
    model: z.string().min(1).optional(),
    /**
     * An upper bound, as in Anthropic's API. Clients such as Claude Code send 32000; the gateway
     * caps generation at MAX_COMPLETION_TOKENS (the answer then ends with `max_tokens`).
     */
    max_tokens: z.number().int().min(1).max(1_000_000),
    messages: z
      .array(z.discriminatedUnion('role', [UserTurn, AssistantTurn]))
      .min(1, 'must contain at least one message'),
    system: blocksOf([TextBlock], 'system').optional(),
    stop_sequences: z.array(z.string()).optional(),
    stream: z.boolean().default(false),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    metadata: z.looseObject({ user_id: z.string().max(256).nullish() }).optional(),
    tools: z.array(Tool).optional(),
    tool_choice: ToolChoice.optional(),
    thinking: z
      .discriminatedUnion('type', [
        z.looseObject({ type: z.literal('enabled'), budget_tokens: z.number().int().positive() }),
        z.looseObject({ type: z.literal('disabled') }),
        z.looseObject({ type: z.literal('adaptive') }),
      ])
      .optional(),
  })
  .meta({ id: 'MessagesRequest' });
export type MessagesRequest = z.infer<typeof MessagesRequest>;

type UserBlock = z.infer<typeof UserTurn>['content'][number];
type AssistantBlock = z.infer<typeof AssistantTurn>['content'][number];
type ImageBlock = z.infer<typeof ImageBlock>;
type UserPart = Extract<ContentPart, { type: 'text' | 'image_url' }>;

export interface TranslatedMessages {
  model: string | undefined;
  messages: ChatMessage[];
  params: GenerationParams;
  stream: boolean;
}

/**
 * The request as the gateway's job: OpenAI Chat Completions messages and parameters.
 *
 * - `system` becomes a leading system message (its text blocks joined with blank lines);
 * - a user turn's text and images become a user message (an image's base64 source a `data:` URL);
 *   each `tool_result` becomes a tool message where it stood, so a turn of results then text is
 *   tool messages then a user message. A result marked `is_error` is prefixed with `Error: `
 *   (OpenAI's tool messages have no error flag). Images in a result go into the user message
 *   right after the run of results (OpenAI's tool messages carry text only, and must directly
 *   follow the assistant's calls);
 * - an assistant turn's text becomes its content (null with tool calls and no text), `tool_use`
 *   blocks its `tool_calls` (the input serialized), `thinking` its `reasoning_content`; thinking
 *   blocks with a signature, and `redacted_thinking` blocks, are also kept as they are, in order,
 *   in its `thinking_blocks`, which the Anthropic backend sends back (a tool loop with thinking
 *   needs them). A thinking block without a signature (`""`: an OpenAI-compatible backend's) is
 *   reasoning text only: Anthropic would refuse it;
 * - parameters: `stop_sequences` → `stop`, `metadata.user_id` → `user`, tools and `tool_choice` in
 *   OpenAI's shapes, `disable_parallel_tool_use` → `parallel_tool_calls: false`; `max_tokens`,
 *   temperature, top_p, top_k and `thinking` as they are.
 */
export function fromMessagesRequest(req: MessagesRequest): TranslatedMessages {
  const messages: ChatMessage[] = [];
  if (req.system !== undefined) {
    // Blocks are paragraphs (Claude Code sends several); a blank line keeps them apart.
    const text = req.system
      .map((b) => b.text)
      .filter((t) => t !== '')
      .join('\n\n');
    if (text !== '') messages.push({ role: 'system', content: text });
  }
  for (const turn of req.messages) {
    if (turn.role === 'user') pushUserTurn(messages, turn.content);
    else messages.push(assistantMessage(turn.content));
  }
  return { model: req.model, messages, params: paramsOf(req), stream: req.stream };
}

function pushUserTurn(out: ChatMessage[], blocks: UserBlock[]): void {
  let parts: UserPart[] = [];
  /** Images of the tool results just seen, held until the run of results ends. */
  let resultImages: UserPart[] = [];
  const flush = () => {
    if (parts.length > 0) out.push({ role: 'user', content: userContent(parts) });
    parts = [];
  };
  for (const b of blocks) {
    if (b.type === 'tool_result') {
      flush();
      const content = b.content ?? [];
      const text = content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('');
      out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: b.is_error ? errorText(text) : text });
      for (const c of content) if (c.type === 'image') resultImages.push(imagePart(c));
      continue;
    }
    parts.push(...resultImages, b.type === 'text' ? { type: 'text', text: b.text } : imagePart(b));
    resultImages = [];
  }
  parts.push(...resultImages);
  flush();
}

/** OpenAI's tool messages have no error flag: the text says it. */
const errorText = (text: string) => (text === '' ? 'Error' : `Error: ${text}`);

/** One text part is plain content, as most clients send it; anything else keeps its parts. */
const userContent = (parts: UserPart[]): string | UserPart[] =>
  parts.length === 1 && parts[0]!.type === 'text' ? parts[0]!.text : parts;

function imagePart(b: ImageBlock): UserPart {
  const url =
    b.source.type === 'base64' ? `data:${b.source.media_type};base64,${b.source.data}` : b.source.url;
  return { type: 'image_url', image_url: { url } };
}

function assistantMessage(blocks: AssistantBlock[]): ChatMessage {
  const texts: string[] = [];
  const thoughts: string[] = [];
  const signed: SignedThinking[] = [];
  const calls: ToolCall[] = [];
  for (const b of blocks) {
    switch (b.type) {
      case 'text':
        texts.push(b.text);
        break;
      case 'thinking':
        thoughts.push(b.thinking);
        if (b.signature) signed.push({ type: 'thinking', thinking: b.thinking, signature: b.signature });
        break;
      case 'tool_use':
        calls.push({
          id: b.id,
          type: 'function',
          function: { name: b.name, arguments: JSON.stringify(b.input) },
        });
        break;
      case 'redacted_thinking':
        if (b.data !== '') signed.push({ type: 'redacted_thinking', data: b.data });
        break;
    }
  }
  // OpenAI wants content or tool calls: null only beside calls, '' for a turn of thoughts only.
  let content: string | { type: 'text'; text: string }[] | null = calls.length > 0 ? null : '';
  if (texts.length === 1) content = texts[0]!;
  else if (texts.length > 1) content = texts.map((text) => ({ type: 'text', text }));
  return {
    role: 'assistant',
    content,
    ...(calls.length > 0 && { tool_calls: calls }),
    ...(thoughts.length > 0 && { reasoning_content: thoughts.join('\n\n') }),
    ...(signed.length > 0 && { thinking_blocks: signed }),
  };
}

function paramsOf(req: MessagesRequest): GenerationParams {
  const choice = req.tool_choice;
  const serial =
    choice !== undefined && 'disable_parallel_tool_use' in choice && choice.disable_parallel_tool_use;
  const userId = req.metadata?.user_id;
  return {
    max_tokens: Math.min(req.max_tokens, MAX_COMPLETION_TOKENS),
    ...(req.stop_sequences !== undefined && { stop: req.stop_sequences }),
    ...(req.temperature !== undefined && { temperature: req.temperature }),
    ...(req.top_p !== undefined && { top_p: req.top_p }),
    ...(req.top_k !== undefined && { top_k: req.top_k }),
    ...(userId != null && { user: userId }),
    ...(req.tools !== undefined && {
      tools: req.tools.map((t) => ({
        type: 'function' as const,
        function: {
          name: t.name,
          ...(t.description !== undefined && { description: t.description }),
          parameters: t.input_schema,
        },
      })),
    }),
    ...(choice !== undefined && { tool_choice: toolChoiceOf(choice) }),
    ...(serial === true && { parallel_tool_calls: false }),
    ...(req.thinking !== undefined && { thinking: thinkingOf(req.thinking) }),
  };
}

function toolChoiceOf(choice: z.infer<typeof ToolChoice>): GenerationParams['tool_choice'] {
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return { type: 'function', function: { name: choice.name } };
  }
}

/** Only the fields the job's schema knows (it is strict, and `display` etc. mean nothing to it). */
const thinkingOf = (t: NonNullable<MessagesRequest['thinking']>): GenerationParams['thinking'] =>
  t.type === 'enabled' ? { type: 'enabled', budget_tokens: t.budget_tokens } : { type: 'disabled' };
