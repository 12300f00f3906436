import { type ChatMessage, type GenerationParams, textOf } from '@llmgw/protocol';
import {
  type BucketDecision,
  endOfUtcDay,
  endOfUtcMonth,
  type Hold,
  reserveQuota,
  settleHold,
  settleQuota,
  takeTokens,
} from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors/index.ts';

/** An image costs about this much (OpenAI's 512 px high-detail tile is 765); audio a minute's worth. */
const IMAGE_TOKENS = 765;
const AUDIO_TOKENS = 1000;

export interface PromptInput {
  messages: ChatMessage[];
  prompt?: string;
  params?: Pick<GenerationParams, 'tools'>;
}

/**
 * Prompt size without a tokenizer: ~4 characters a token plus a few per message for the chat
 * template; images and audio at a flat rate; tool calls and tool definitions by their JSON.
 * Over-estimating is safe: the reservation is settled to the backend's real count.
 */
export function estimatePromptTokens({ messages, prompt, params }: PromptInput): number {
  let chars = prompt?.length ?? 0;
  let media = 0;
  for (const m of messages) {
    chars += textOf(m.content as Parameters<typeof textOf>[0]).length;
    if (Array.isArray(m.content)) {
      for (const part of m.content) {
        if (part.type === 'image_url') media += IMAGE_TOKENS;
        else if (part.type === 'input_audio') media += AUDIO_TOKENS;
      }
    }
    if (m.role === 'assistant' && m.tool_calls) {
      for (const call of m.tool_calls) chars += call.function.name.length + call.function.arguments.length;
    }
  }
  if (params?.tools) chars += JSON.stringify(params.tools).length;
  return Math.ceil(chars / 4) + media + 4 * messages.length + 3;
}

export interface Reservation {
  /** The daily quota's counter. */
  key: string;
  reserved: number;
  promptEstimate: number;
  /** The other reservations of the same request (tokens per minute, a monthly budget). */
  holds?: Hold[];
}

/** A tokens-per-minute bucket taken from: the hold, and the bucket's state for the response headers. */
export interface TokensPerMinute {
  hold: Hold;
  limit: number;
  decision: BucketDecision;
}

/** `1m0s`-style durations, as OpenAI's `x-ratelimit-reset-*` headers spell them. */
export const resetDuration = (ms: number): string => {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
};

/** The `x-ratelimit-*-tokens` headers OpenAI's clients read, for a bucket's state. */
export const tokenHeaders = (limit: number, d: BucketDecision): Record<string, string> => ({
  'x-ratelimit-limit-tokens': String(limit),
  'x-ratelimit-remaining-tokens': String(Math.max(0, d.remaining)),
  'x-ratelimit-reset-tokens': resetDuration(d.fullMs),
});

/**
 * Token reservations, all made at admission from the prompt estimate + max_tokens and settled
 * to the real usage when the job ends (by its worker; here when it never ran): the daily quota,
 * tokens per minute, a key's monthly budget.
 */
export class QuotaBook {
  constructor(private readonly redis: Redis) {}

  /** Throws 429 `quota_exceeded` (Retry-After: midnight UTC, x-should-retry: false). */
  async reserve(key: string, limit: number, input: PromptInput, maxTokens: number): Promise<Reservation> {
    const now = Date.now();
    const promptEstimate = estimatePromptTokens(input);
    const reserved = promptEstimate + maxTokens;
    const r = await reserveQuota(this.redis, key, reserved, limit, now);
    if (!r.reserved) {
      const untilMidnight = Math.max(1, Math.ceil((endOfUtcDay(now) * 1000 - now) / 1000));
      throw new ApiError(
        'quota_exceeded',
        `daily token quota of ${limit} exhausted (${r.used} used or reserved; this request needs up to ${reserved}); it resets at 00:00 UTC`,
        {
          details: { limit, used: r.used, requested: reserved },
          // The OpenAI SDKs retry 429s unless told not to; retrying before midnight cannot succeed.
          headers: { 'Retry-After': String(untilMidnight), 'x-should-retry': 'false' },
        },
      );
    }
    return { key, reserved, promptEstimate };
  }

  /**
   * Takes `amount` from a tokens-per-minute bucket. Throws 429 `rate_limit_exceeded` with
   * Retry-After (when the bucket holds enough again) and the `x-ratelimit-*-tokens` headers; a
   * request larger than the whole bucket can never pass, and says so (x-should-retry: false).
   */
  async takePerMinute(key: string, limit: number, amount: number): Promise<TokensPerMinute> {
    const decision = await takeTokens(this.redis, key, amount, limit);
    if (!decision.taken) {
      const never = amount > limit;
      throw new ApiError(
        'rate_limit_exceeded',
        never
          ? `this request needs up to ${amount} tokens (prompt estimate + max_tokens), more than the limit of ${limit} tokens per minute; lower max_tokens`
          : `rate limit of ${limit} tokens per minute exceeded (this request needs up to ${amount}, ${decision.remaining} available)`,
        {
          details: { limit, remaining: decision.remaining, requested: amount, window: '1m' },
          headers: {
            ...tokenHeaders(limit, decision),
            ...(never
              ? { 'x-should-retry': 'false' }
              : { 'Retry-After': String(Math.max(1, Math.ceil(decision.waitMs / 1000))) }),
          },
        },
      );
    }
    return { hold: { kind: 'bucket', key, reserved: amount }, limit, decision };
  }

  /** Reserves from a key's monthly budget. Throws 429 `budget_exceeded`: final until the month ends. */
  async reserveBudget(key: string, limit: number, amount: number): Promise<Hold> {
    const now = Date.now();
    const r = await reserveQuota(this.redis, key, amount, limit, now, endOfUtcMonth(now));
    if (!r.reserved) {
      const untilMonthEnd = Math.max(1, Math.ceil(endOfUtcMonth(now) - now / 1000));
      throw new ApiError(
        'budget_exceeded',
        `this API key's monthly budget of ${limit} tokens is spent (${r.used} used or reserved; this request needs up to ${amount}); it renews on the 1st, 00:00 UTC`,
        {
          details: { limit, used: r.used, requested: amount },
          headers: { 'Retry-After': String(untilMonthEnd), 'x-should-retry': 'false' },
        },
      );
    }
    return { kind: 'counter', key, reserved: amount };
  }

  /** Gives a reservation back whole, its holds too (the job never ran). */
  async release(r: Reservation): Promise<void> {
    await Promise.all([
      r.reserved > 0 && settleQuota(this.redis, r.key, -r.reserved),
      ...(r.holds ?? []).map((h) => settleHold(this.redis, h, -h.reserved)),
    ]);
  }
}
