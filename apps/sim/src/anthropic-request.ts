import { z } from 'zod';
import { isReasoningModel, thinkingSignature } from './reasoning.ts';
import { contentText, IMAGE_TOKENS, type PromptPart } from './text.ts';
import { chooseTools, type ToolDefinition } from './tool-calls.ts';

const imageSource = z.object({
  type: z.string(),
  media_type: z.string().nullish(),
  data: z.string().nullish(),
  url: z.string().nullish(),
});

/** What a `tool_result` may hold: text and image blocks. */
const resultBlock = z.object({
  type: z.string(),
  text: z.string().optional(),
  source: imageSource.optional(),
});

/**
 * One content block, any type: `text`, `image`, `tool_use` (id, name, input), `tool_result`
 * (tool_use_id, content, is_error), `thinking` / `redacted_thinking`; unknown types carry nothing.
 */
const block = z.object({
  type: z.string(),
  text: z.string().optional(),
  source: imageSource.optional(),
  id: z.string().optional(),
  name: z.string().optional(),
  input: z.unknown().optional(),
  tool_use_id: z.string().optional(),
  content: z.union([z.string(), z.array(resultBlock)]).optional(),
  is_error: z.boolean().optional(),
  thinking: z.string().optional(),
  signature: z.string().optional(),
  data: z.string().optional(),
});

const content = z.union([z.string(), z.array(block)]);

const tool = z.object({
  name: z.string(),
  type: z.string().optional(),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
});

const toolChoice = z
  .object({
    type: z.enum(['auto', 'any', 'none', 'tool']),
    name: z.string().optional(),
    disable_parallel_tool_use: z.boolean().optional(),
  })
  .refine((c) => c.type !== 'tool' || c.name !== undefined, { message: 'tool_choice.name is required' });

/**
 * The fields of Anthropic's Messages API the simulator reads; `metadata` and the sampling
 * parameters (temperature, top_p, top_k) are accepted and ignored.
 */
export const messagesRequestSchema = z.object({
  model: z.string(),
  max_tokens: z.number().int().min(1),
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content })).min(1),
  system: content.optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  thinking: z.object({ type: z.string(), budget_tokens: z.number().int().optional() }).optional(),
});

export type MessagesRequest = z.output<typeof messagesRequestSchema>;
type Block = z.output<typeof block>;

function addImage(part: PromptPart, source: z.output<typeof imageSource> | undefined): void {
  part.media = `${part.media ?? ''}${source?.data ?? source?.url ?? ''}\u0003`;
  part.mediaTokens = (part.mediaTokens ?? 0) + IMAGE_TOKENS;
}

function addBlock(part: PromptPart, b: Block): void {
  switch (b.type) {
    case 'text':
      part.text += b.text ?? '';
      return;
    case 'image':
      addImage(part, b.source);
      return;
    case 'tool_use':
      part.text += (b.name ?? '') + JSON.stringify(b.input ?? {});
      return;
    case 'tool_result':
      if (typeof b.content === 'string') part.text += b.content;
      else
        for (const r of b.content ?? []) {
          if (r.type === 'text') part.text += r.text ?? '';
          else if (r.type === 'image') addImage(part, r.source);
        }
      return;
    default:
      // thinking / redacted_thinking: Anthropic drops earlier turns' thinking from the context.
      return;
  }
}

/**
 * What the prompt estimate and hash see: the system prompt, the tool definitions as one more
 * message holding their JSON, and per message its text, tool_use name + input JSON, tool_result
 * text, and images (fixed token count, data or URL into the hash).
 */
export function messagesPromptParts(body: MessagesRequest): PromptPart[] {
  const parts: PromptPart[] = [];
  if (body.tools && body.tools.length > 0) parts.push({ role: 'tools', text: JSON.stringify(body.tools) });
  if (body.system !== undefined) parts.push({ role: 'system', text: contentText(body.system) });
  for (const m of body.messages) {
    const part: PromptPart = { role: m.role, text: '' };
    if (typeof m.content === 'string') part.text = m.content;
    else for (const b of m.content) addBlock(part, b);
    parts.push(part);
  }
  return parts;
}

/**
 * The tools the model uses, [] for a text answer: one when tools are offered, `tool_choice` is not
 * `none` and the last message carries no tool_result (a result is answered in text). The named
 * tool for `{type:'tool'}`, else the first; the first two for `{type:'any'}` unless
 * `disable_parallel_tool_use`.
 */
export function messagesToolChoice(body: MessagesRequest): ToolDefinition[] {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? { type: 'auto' as const };
  const last = body.messages.at(-1)!.content;
  const answersResult = typeof last !== 'string' && last.some((b) => b.type === 'tool_result');
  if (tools.length === 0 || choice.type === 'none' || answersResult) return [];
  const named = choice.type === 'tool' ? choice.name! : null;
  const parallel = choice.type === 'any' && choice.disable_parallel_tool_use !== true;
  return chooseTools(
    tools.map((t) => ({ name: t.name, schema: t.input_schema })),
    named,
    parallel,
  );
}

/** Extended thinking: asked for with `thinking: {type:'enabled'}`, or always on a reasoning model. */
export function messagesThinks(body: MessagesRequest): boolean {
  return body.thinking?.type === 'enabled' || isReasoningModel(body.model);
}

/** Anthropic's own words (docs.claude.com, extended thinking with tool use). */
const THINKING_FIRST =
  'When `thinking` is enabled, a final `assistant` message must start with a thinking block ' +
  '(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include ' +
  'thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please ' +
  'consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking';

/**
 * What Anthropic's API refuses (400) about the thinking a client sends back, so that a client or
 * gateway that loses it is caught: with `thinking` on (`enabled` or `adaptive`), the last
 * assistant message, when it calls tools (a tool loop under way), must start with a `thinking` or
 * `redacted_thinking` block, and each of its thinking blocks must carry the signature this
 * simulator gave those thoughts ({@link thinkingSignature}). With thinking off, or a last
 * assistant turn without tool_use, nothing is checked. Undefined when the request is fine.
 */
export function messagesThinkingError(body: MessagesRequest): string | undefined {
  const mode = body.thinking?.type;
  if (mode !== 'enabled' && mode !== 'adaptive') return undefined;
  const at = body.messages.findLastIndex((m) => m.role === 'assistant');
  const content = at < 0 ? undefined : body.messages[at]!.content;
  if (typeof content !== 'object' || !content.some((b) => b.type === 'tool_use')) return undefined;
  const first = content[0]!.type;
  if (first !== 'thinking' && first !== 'redacted_thinking') {
    return `messages.${at}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${first}\`. ${THINKING_FIRST}`;
  }
  for (const [i, b] of content.entries()) {
    if (b.type === 'thinking' && b.signature !== thinkingSignature(b.thinking ?? '')) {
      return `messages.${at}.content.${i}: Invalid \`signature\` in \`thinking\` block`;
    }
  }
  return undefined;
}
