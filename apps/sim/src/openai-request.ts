import { z } from 'zod';
import { SimError } from './errors.ts';
import { jsonForSchema, jsonObjectAnswer } from './json-schema-output.ts';
import { isReasoningModel } from './reasoning.ts';
import { AUDIO_TOKENS, IMAGE_TOKENS, type PromptPart } from './text.ts';
import { chooseTools, type ToolDefinition } from './tool-calls.ts';

/** Content parts of the Chat Completions API; types the simulator does not know carry nothing. */
const contentPart = z.object({
  type: z.string(),
  text: z.string().nullish(),
  image_url: z.object({ url: z.string(), detail: z.string().nullish() }).nullish(),
  input_audio: z.object({ data: z.string(), format: z.string().nullish() }).nullish(),
  refusal: z.string().nullish(),
});

const toolCall = z.object({
  id: z.string().nullish(),
  type: z.string().nullish(),
  function: z.object({ name: z.string(), arguments: z.string().nullish() }),
});

const message = z.object({
  role: z.string(),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(toolCall).nullish(),
  tool_call_id: z.string().nullish(),
});

const tool = z.object({
  type: z.string(),
  function: z.object({
    name: z.string(),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
  }),
});

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.string(), function: z.object({ name: z.string() }) }),
]);

const maxTokens = z.number().int().min(1).nullish();

/** vLLM's `response_format` types; `structural_tag` is accepted and answered with free text. */
const responseFormat = z.object({
  type: z.enum(['text', 'json_object', 'json_schema', 'structural_tag']),
  json_schema: z
    .object({
      name: z.string(),
      description: z.string().nullish(),
      schema: z.record(z.string(), z.unknown()).nullish(),
      strict: z.boolean().nullish(),
    })
    .nullish(),
});

/** `continuous_usage_stats` is vLLM's: with `include_usage`, the usage so far in every chunk. */
export const streamOptions = z
  .object({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() })
  .nullish();

/**
 * The fields the simulator reads. Everything else of the Chat Completions API (temperature,
 * top_p, top_k, min_p, repetition_penalty, reasoning_effort, priority, …) is accepted and ignored.
 */
export const chatCompletionRequestSchema = z.object({
  model: z.string(),
  messages: z.array(message).min(1),
  max_tokens: maxTokens,
  max_completion_tokens: maxTokens,
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  stream_options: streamOptions,
  ignore_eos: z.boolean().nullish(),
  n: z.number().int().nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  response_format: responseFormat.nullish(),
});

export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

/**
 * What the prompt estimate and hash see: each message's text, refusals and the name + arguments
 * of its tool calls; its images and audio as fixed token counts whose URL/data feed the hash;
 * the tool definitions as one more message holding their JSON.
 */
export function chatPromptParts(body: ChatCompletionRequest): PromptPart[] {
  const parts: PromptPart[] = [];
  if (body.tools && body.tools.length > 0) parts.push({ role: 'tools', text: JSON.stringify(body.tools) });
  for (const m of body.messages) {
    const part: PromptPart = { role: m.role, text: '' };
    if (typeof m.content === 'string') part.text = m.content;
    else if (m.content) {
      let media = '';
      let mediaTokens = 0;
      for (const p of m.content) {
        if (p.type === 'text') part.text += p.text ?? '';
        else if (p.type === 'refusal') part.text += p.refusal ?? '';
        else if (p.type === 'image_url') {
          media += `${p.image_url?.url ?? ''}\u0003`;
          mediaTokens += IMAGE_TOKENS;
        } else if (p.type === 'input_audio') {
          media += `${p.input_audio?.data ?? ''}\u0003`;
          mediaTokens += AUDIO_TOKENS;
        }
      }
      if (mediaTokens > 0) Object.assign(part, { media, mediaTokens });
    }
    for (const call of m.tool_calls ?? []) part.text += call.function.name + (call.function.arguments ?? '');
    parts.push(part);
  }
  return parts;
}

/**
 * The tools the model calls, [] for a text answer: it calls one when tools are offered,
 * `tool_choice` is not `none` and the last message is not a tool result (then it answers the
 * result in text). The named tool, else the first; the first two with `parallel_tool_calls: true`.
 */
export function chatToolChoice(body: ChatCompletionRequest): ToolDefinition[] {
  const tools = body.tools ?? [];
  if (tools.length === 0 || body.tool_choice === 'none' || body.messages.at(-1)!.role === 'tool') return [];
  const named =
    typeof body.tool_choice === 'object' && body.tool_choice ? body.tool_choice.function.name : null;
  const defs = tools.map((t) => ({ name: t.function.name, schema: t.function.parameters }));
  return chooseTools(defs, named, body.parallel_tool_calls === true);
}

/** A reasoning model reasons unless the chat template is told not to (Qwen3's `enable_thinking: false`). */
export function chatReasons(body: ChatCompletionRequest): boolean {
  return isReasoningModel(body.model) && body.chat_template_kwargs?.enable_thinking !== false;
}

/**
 * The structured output `response_format` asks for, as the JSON text of the answer; null for free
 * text (`text`, `structural_tag` or none). `json_schema`: a value that validates against the schema
 * (json-schema-output.ts); without a `schema`, or `json_object`: a JSON object. Like vLLM, `strict`
 * changes nothing (the output is always constrained); `json_schema` without `json_schema` is a 400.
 */
export function chatStructuredOutput(body: ChatCompletionRequest, hash: number): string | null {
  const format = body.response_format;
  if (!format) return null;
  if (format.type === 'json_schema') {
    if (!format.json_schema) {
      throw new SimError('bad_request', 'response_format.json_schema is required for type json_schema.', {
        param: 'response_format',
      });
    }
    const schema = format.json_schema.schema;
    return schema ? jsonForSchema(schema, hash) : jsonObjectAnswer(hash);
  }
  return format.type === 'json_object' ? jsonObjectAnswer(hash) : null;
}
