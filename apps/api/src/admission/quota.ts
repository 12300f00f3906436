import { type ChatMessage, type GenerationParams, textOf } from '@llmgw/protocol';
import { endOfUtcDay, type Keys, reserveQuota, settleQuota, utcDay } from '@llmgw/redis';
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
  key: string;
  reserved: number;
  promptEstimate: number;
}

/** Daily token quotas: reserve prompt estimate + max_tokens at admission, settle when the job ends. */
export class QuotaBook {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Throws 429 `quota_exceeded` (Retry-After: midnight UTC, x-should-retry: false). */
  async reserve(userId: string, limit: number, input: PromptInput, maxTokens: number): Promise<Reservation> {
    const now = Date.now();
    const promptEstimate = estimatePromptTokens(input);
    const reserved = promptEstimate + maxTokens;
    const key = this.keys.quota(userId, utcDay(now));
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

  /** Gives a reservation back whole (the job never ran). */
  async release(r: Reservation): Promise<void> {
    await settleQuota(this.redis, r.key, -r.reserved);
  }
}
