import { z } from 'zod';

/**
 * A conversation in OpenAI Chat Completions terms: the one request model of the gateway. The api
 * validates client input with these schemas, the job carries the result, and OpenAI-compatible
 * backends receive it unchanged (objects are loose: a field we do not know is kept, not dropped).
 * The Anthropic backend and `/v1/messages` translate to and from it.
 */

/** `data:` URLs carry the image itself; the gateway never fetches an http(s) URL (the backend does). */
const imageUrl = z
  .string()
  .refine((u) => /^https?:\/\//i.test(u) || /^data:[\w.+-]+\/[\w.+-]+(;[\w=.+-]+)*;base64,/i.test(u), {
    message: 'must be an http(s) URL or a base64 data: URL',
  });

export const TextPart = z.looseObject({ type: z.literal('text'), text: z.string() });
export const ImagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: imageUrl, detail: z.enum(['auto', 'low', 'high']).optional() }),
});
export const AudioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string().min(1), format: z.string().min(1) }),
});
export const RefusalPart = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });

/** Parts of one role's content; an unknown part type names itself and what is supported. */
const partsOf = <const T extends readonly [z.core.$ZodTypeDiscriminable, ...z.core.$ZodTypeDiscriminable[]]>(
  options: T,
  role: string,
) =>
  z.array(
    z.discriminatedUnion('type', options, {
      error: (iss) =>
        iss.code === 'invalid_union' && iss.note === 'No matching discriminator'
          ? `content part type ${JSON.stringify((iss.input as { type?: unknown } | undefined)?.type)} is not supported in ${role} messages (supported: ${(iss as { options?: unknown[] }).options?.join(', ')})`
          : undefined,
    }),
  );

/**
 * A string, or an array of parts. A union reports only "Invalid input" when every option fails;
 * for an array, the parts' own first issue is what the client needs to read.
 */
const stringOr = <T extends z.ZodType>(parts: T) =>
  z.union([z.string(), parts], {
    error: (iss) => {
      if (iss.code !== 'invalid_union' || !Array.isArray(iss.input)) return undefined;
      const nested = (iss as { errors?: { path: PropertyKey[]; message: string }[][] }).errors?.[1]?.[0];
      if (!nested) return undefined;
      const [index, ...rest] = nested.path;
      const where =
        index === undefined ? '' : `part ${String(index)}${rest.length ? `.${rest.join('.')}` : ''}: `;
      return `${where}${nested.message}`;
    },
  });

export const ToolCall = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function').default('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCall>;

const name = z.string().max(256).optional();
const textContent = stringOr(partsOf([TextPart], 'system'));

export const SystemMessage = z.looseObject({
  role: z.enum(['system', 'developer']),
  content: textContent,
  name,
});
export const UserMessage = z.looseObject({
  role: z.literal('user'),
  content: stringOr(partsOf([TextPart, ImagePart, AudioPart], 'user')),
  name,
});

/**
 * Anthropic's thinking blocks as an answer carries them: the thoughts with the `signature`
 * Anthropic's API gave them, and `redacted_thinking` (thoughts it encrypted, opaque `data`). Only
 * Anthropic can check them, and it wants them back unchanged in the assistant turn of a tool loop
 * with thinking on. Exactly these fields: anything else a client put on a block is not relayed.
 */
export const ThinkingBlock = z.object({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string().min(1),
});
export const RedactedThinkingBlock = z.object({
  type: z.literal('redacted_thinking'),
  data: z.string().min(1),
});
export const SignedThinking = z.discriminatedUnion('type', [ThinkingBlock, RedactedThinkingBlock]);
export type SignedThinking = z.infer<typeof SignedThinking>;

export const AssistantMessage = z.looseObject({
  role: z.literal('assistant'),
  content: stringOr(partsOf([TextPart, RefusalPart], 'assistant')).nullish(),
  name,
  refusal: z.string().nullish(),
  tool_calls: z.array(ToolCall).nullish(),
  /** What the model thought before this answer, when a client sends it back (vLLM, DeepSeek). */
  reasoning_content: z.string().nullish(),
  /**
   * The answer's signed thinking, in order (`/v1/messages` puts the client's signed `thinking`
   * and `redacted_thinking` blocks here; LiteLLM names the same field so). The Anthropic backend
   * sends them first in this turn; OpenAI-compatible backends never get them. Optional: a job
   * without it is what older releases wrote, and an older worker does not read it.
   */
  thinking_blocks: z.array(SignedThinking).nullish(),
});
export const ToolMessage = z.looseObject({
  role: z.literal('tool'),
  content: stringOr(partsOf([TextPart], 'tool')),
  tool_call_id: z.string().min(1),
});

export const ChatMessage = z.discriminatedUnion('role', [
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
]);
export type ChatMessage = z.infer<typeof ChatMessage>;
export type ContentPart =
  | z.infer<typeof TextPart>
  | z.infer<typeof ImagePart>
  | z.infer<typeof AudioPart>
  | z.infer<typeof RefusalPart>;

export const FunctionTool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().min(1).max(64),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});
export type FunctionTool = z.infer<typeof FunctionTool>;

export const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

export const ResponseFormat = z.union([
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({ name: z.string().min(1) }),
  }),
]);

/** The text of a content value (string, parts, or none); non-text parts contribute nothing. */
export function textOf(content: string | readonly ContentPart[] | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  let text = '';
  for (const p of content) if (p.type === 'text') text += p.text;
  return text;
}

/** True when a message carries nothing for the model: no text, no other part, no tool call. */
export function isEmptyMessage(m: ChatMessage): boolean {
  if (m.role === 'assistant' && m.tool_calls && m.tool_calls.length > 0) return false;
  const c = m.content;
  if (c == null) return true;
  if (typeof c === 'string') return c.trim() === '';
  return c.every((p) => p.type === 'text' && p.text.trim() === '');
}
