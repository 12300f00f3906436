import type { GenerationParams } from '@llmgw/protocol';
import { z } from 'zod';

export const MAX_COMPLETION_TOKENS = 4096;
export const DEFAULT_COMPLETION_TOKENS = 1024;

const maxTokens = z.number().int().min(1).max(MAX_COMPLETION_TOKENS).nullable().optional();
const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

/**
 * Request fields `/v1/chat/completions` and `/v1/completions` share, under their OpenAI names,
 * plus vLLM's sampling extensions. Unknown fields are ignored, as OpenAI's server does.
 */
export const SamplingFields = {
  model: z.string().min(1).optional(),
  stream: z.boolean().default(false),
  stream_options: nullable(z.object({ include_usage: z.boolean().optional() })),
  max_tokens: maxTokens,
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  stop: nullable(z.union([z.string(), z.array(z.string()).max(4)])),
  seed: nullable(z.number().int()),
  presence_penalty: nullable(z.number().min(-2).max(2)),
  frequency_penalty: nullable(z.number().min(-2).max(2)),
  user: z.string().max(256).optional(),
  n: nullable(z.number().int().min(1)),
  top_k: nullable(z.number().int()),
  min_p: nullable(z.number().min(0).max(1)),
  repetition_penalty: nullable(z.number().positive()),
};

type Sampling = {
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  user?: string;
  top_k?: number | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
};

const defined = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** The shared fields as job parameters (nulls dropped, `stop` always a list). */
export function samplingParams(req: Sampling, maxTokensValue: number): GenerationParams {
  return {
    max_tokens: maxTokensValue,
    temperature: defined(req.temperature),
    top_p: defined(req.top_p),
    stop: req.stop == null ? undefined : typeof req.stop === 'string' ? [req.stop] : req.stop,
    seed: defined(req.seed),
    presence_penalty: defined(req.presence_penalty),
    frequency_penalty: defined(req.frequency_penalty),
    user: req.user,
    top_k: defined(req.top_k),
    min_p: defined(req.min_p),
    repetition_penalty: defined(req.repetition_penalty),
  };
}

/** The rules both endpoints state the same way. */
export function refineSampling(
  req: { n?: number | null; stream?: boolean; stream_options?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (req.n != null && req.n > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['n'],
      message: 'n > 1 is not supported: each request is one queued generation; send n separate requests',
    });
  }
  if (req.stream_options && !req.stream) {
    ctx.addIssue({
      code: 'custom',
      path: ['stream_options'],
      message: 'stream_options requires stream: true',
    });
  }
}
