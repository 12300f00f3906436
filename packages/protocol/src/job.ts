import { z } from 'zod';

/**
 * The chat job, as the api enqueues it and the worker reads it (BullMQ job data).
 * Versioned so a worker of an older release can refuse a job it does not understand
 * instead of half-running it.
 */
export const ChatMessage = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  content: z.string(),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

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
  tools: z.array(z.unknown()).optional(),
  tool_choice: z.unknown().optional(),
  response_format: z.unknown().optional(),
});
export type GenerationParams = z.infer<typeof GenerationParams>;

export const ChatJob = z.object({
  v: z.literal(1),
  /** Reply channel the worker publishes events on (the enqueuing api process's own channel). */
  replyTo: z.string().min(1),
  requestId: z.string(),
  model: z.string().min(1),
  messages: z.array(ChatMessage).min(1),
  params: GenerationParams,
  userId: z.string().optional(),
  tier: z.string().optional(),
  /** Epoch ms when the api enqueued the job; the worker measures queue wait from it. */
  enqueuedAt: z.number(),
  /**
   * The daily-quota reservation made at admission; the worker settles it to the real usage when
   * the job ends, whatever the outcome (the api does when it removes a job that never ran).
   */
  quota: z.object({ key: z.string(), reserved: z.number(), promptEstimate: z.number() }).optional(),
  /** Epoch ms after which the job must not start (QUEUE_TIMEOUT_MS): its client has been told. */
  deadline: z.number().optional(),
});
export type ChatJob = z.infer<typeof ChatJob>;

/** What a finished job returns (BullMQ `returnvalue`): the usage that quota settlement reads. */
export const ChatResult = z.object({
  finishReason: z.string(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }),
});
export type ChatResult = z.infer<typeof ChatResult>;
