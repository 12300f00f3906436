import { DEFAULT_MODEL } from '@llmgw/config';
import { createApiKey } from './common.ts';
import { type Stack, startStack } from './in-process.ts';

/** A served name the simulator answers as a reasoning model (reasoning deltas before the answer). */
export const REASONING_MODEL = 'sim-reasoning';
/** Known to the gateway (a worker served it once) with no live worker: 503 model_unavailable. */
export const GHOST_MODEL = 'sim-ghost';

/** Tiers for the error classes: one request a minute, and a quota no request fits in. */
const TIERS = JSON.stringify({
  free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
  enterprise: { requests_per_min: 10_000, tokens_per_day: 50_000_000, priority: 1 },
  one_rpm: { requests_per_min: 1, tokens_per_day: 50_000_000, priority: 2 },
  broke: { requests_per_min: 10_000, tokens_per_day: 1, priority: 2 },
});

export interface CompatStack extends Stack {
  /** A fresh key (and user) of `tier`. */
  keyOf(tier: 'one_rpm' | 'broke' | 'enterprise'): Promise<string>;
  /** What the backend received, oldest first (the simulator's request log). */
  backendRequests(): { path: string; body: Record<string, unknown> }[];
}

/**
 * The whole path for client-compatibility tests: api, one worker serving the default model and
 * a reasoning model, the simulator. `provider: 'anthropic'` makes the worker drive the
 * simulator's Anthropic Messages route instead of its OpenAI one.
 */
export async function startCompatStack(provider: 'openai' | 'anthropic' = 'openai'): Promise<CompatStack> {
  const stack = await startStack({
    // Answers run to max_tokens or 400 tokens: long enough that an abort lands mid-stream. 10 ms
    // between tokens keeps a streamed tool call in several frames even when the publisher
    // coalesces under load (it batches what arrives while a publish is in flight).
    sim: { ttftMs: 5, itlMs: 10, outputTokens: 400, models: [DEFAULT_MODEL, REASONING_MODEL] },
    // The default RESUME_GRACE_MS: a client's abort cancels its job at once (docs/api.md).
    api: { TIERS_JSON: TIERS },
    workers: [],
  });
  await stack.startWorker({
    WORKER_MODELS: `${DEFAULT_MODEL},${REASONING_MODEL}`,
    ...(provider === 'anthropic' && { LLM_PROVIDER: 'anthropic', LLM_BASE_URL: stack.sim!.url }),
  });
  await stack.redis.sadd(stack.keys.models, GHOST_MODEL);
  let n = 0;
  return Object.assign(stack, {
    keyOf: async (tier: string) =>
      (await createApiKey(stack.redis, stack.prefix, `compat-${tier}-${n++}`, tier)).key,
    backendRequests: () =>
      (stack.sim as unknown as { requests(): { path: string; body: Record<string, unknown> }[] }).requests(),
  });
}

/** A tool with a JSON schema, as every client declares one. */
export const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
  },
} as const;
