import { z } from 'zod';
import type { Delta } from './deltas.ts';
import { ChatMessage, FunctionTool, ResponseFormat, ToolChoice } from './messages.ts';

/** Sampling and output parameters passed to the backend as they are (OpenAI names). */
export const GenerationParams = z.object({
  max_tokens: z.number().int().positive(),
  temperature: z.number().optional(),
  top_p: z.number().optional(),
  stop: z.array(z.string()).optional(),
  seed: z.number().int().optional(),
  presence_penalty: z.number().optional(),
  frequency_penalty: z.number().optional(),
  user: z.string().optional(),
  tools: z.array(FunctionTool).optional(),
  tool_choice: ToolChoice.optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: ResponseFormat.optional(),
  /** Chat: per-token logprobs of the answer; `top_logprobs` alternatives each (0..20). */
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
  /** OpenAI reasoning models; passed to OpenAI-compatible backends. */
  reasoning_effort: z.string().optional(),
  /** Anthropic extended thinking (`/v1/messages`); the Anthropic backend passes it on. */
  thinking: z
    .looseObject({
      type: z.enum(['enabled', 'disabled', 'adaptive']),
      budget_tokens: z.number().int().positive().optional(),
    })
    .optional(),
  /** vLLM sampling extensions (Anthropic supports top_k too). */
  top_k: z.number().int().optional(),
  min_p: z.number().optional(),
  repetition_penalty: z.number().optional(),
  /** vLLM: e.g. `{"enable_thinking": true}` for Qwen3-style templates. */
  chat_template_kwargs: z.record(z.string(), z.unknown()).optional(),
  /** Legacy completions: the prompt is repeated before the answer. */
  echo: z.boolean().optional(),
  /** vLLM `priority` (with `--scheduling-policy priority`; lower runs earlier): set by workers with BACKEND_PRIORITY. */
  priority: z.number().int().optional(),
});
export type GenerationParams = z.infer<typeof GenerationParams>;

export const JOB_VERSION = 3;

/**
 * The chat job, as the api enqueues it and the worker reads it (BullMQ job data).
 * Versioned so a worker of an older release can refuse a job it does not understand
 * instead of half-running it. v2: OpenAI Chat Completions messages (content parts, tool calls,
 * tool results), tools and reasoning parameters, and legacy text completions (`kind`).
 * v3: a durable event log per job (`log`), and a grace before a job nobody follows is cancelled
 * (`graceMs`); `replyTo` is the job's own channel.
 */
export const ChatJob = z
  .object({
    v: z.literal(JOB_VERSION),
    /** `chat`: /v1/chat/completions semantics (messages); `completion`: legacy /v1/completions (prompt). */
    kind: z.enum(['chat', 'completion']).default('chat'),
    /** Channel the worker publishes the job's events on (the job's own: any api may follow it). */
    replyTo: z.string().min(1),
    /**
     * Every event is also appended to the job's event log (a Redis Stream, keys.jobEvents), capped
     * at `maxEvents` and kept `retainMs` after the last one: resume, replay, async results.
     */
    log: z
      .object({ retainMs: z.number().int().positive(), maxEvents: z.number().int().positive() })
      .optional(),
    /**
     * How long the job keeps generating while nobody follows it (a publish reaches no
     * subscriber): its client may reconnect and resume. 0: cancelled at once; -1: never (an
     * asynchronous job).
     */
    graceMs: z.number().int().min(-1).default(0),
    requestId: z.string(),
    model: z.string().min(1),
    /** The conversation (chat); empty for a completion. */
    messages: z.array(ChatMessage),
    /** The prompt of a completion. */
    prompt: z.string().optional(),
    params: GenerationParams,
    userId: z.string().optional(),
    tier: z.string().optional(),
    /** Public id of the API key the request came with (`key_…`): the usage ledger's key. */
    keyId: z.string().optional(),
    /**
     * A request of a batch (the OpenAI Batch API): run on the model's batch queue, in idle slots
     * only; its answer goes into the batch's results (keys.batchResults), not to a client.
     */
    batch: z
      .object({ id: z.string(), index: z.number().int().nonnegative(), customId: z.string() })
      .optional(),
    /** Epoch ms when the api enqueued the job; the worker measures queue wait from it. */
    enqueuedAt: z.number(),
    /**
     * The daily-quota reservation made at admission; the worker settles it to the real usage when
     * the job ends, whatever the outcome (the api does when it removes a job that never ran).
     */
    quota: z.object({ key: z.string(), reserved: z.number(), promptEstimate: z.number() }).optional(),
    /**
     * Its other reservations, settled the same way and at the same moment: tokens per minute
     * (`bucket`), a key's monthly budget or its own daily quota (`counter`). Measured against the
     * same usage as `quota`, whose prompt estimate they share.
     */
    holds: z
      .array(z.object({ kind: z.enum(['counter', 'bucket']), key: z.string(), reserved: z.number() }))
      .optional(),
    /** Epoch ms after which the job must not start (QUEUE_TIMEOUT_MS): its client has been told. */
    deadline: z.number().optional(),
    /** The tier's scheduling priority (lower runs first), for vLLM's `priority` (BACKEND_PRIORITY). */
    priority: z.number().int().optional(),
    /** Workers whose backend failed this job before its first token: others are preferred. */
    failedOn: z.array(z.string()).optional(),
  })
  .superRefine((job, ctx) => {
    if (job.kind === 'chat' && job.messages.length === 0)
      ctx.addIssue({ code: 'custom', path: ['messages'], message: 'a chat job needs messages' });
    if (job.kind === 'completion' && job.prompt === undefined)
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'a completion job needs a prompt' });
  });
export type ChatJob = z.infer<typeof ChatJob>;

/** What a finished job returns (BullMQ `returnvalue`): the usage that quota settlement reads. */
export const ChatResult = z.object({
  finishReason: z.string(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }),
});
export type ChatResult = z.infer<typeof ChatResult>;

/**
 * What a worker writes for one batch request when it ends (keys.batchResults, field = its index):
 * the answer as deltas (the api renders them in the endpoint's body when it writes the output
 * file), or the error. Written once per request, whoever ends it.
 */
export const BatchResult = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    deltas: z.array(z.custom<Delta>()),
    finishReason: z.string(),
    stopSequence: z.string().optional(),
    usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }),
  }),
  z.object({
    ok: z.literal(false),
    error: z.string(),
    message: z.string(),
    usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }).optional(),
  }),
]);
export type BatchResult = z.infer<typeof BatchResult>;
