import type { ChatMessage } from '@llmgw/protocol';
import { endOfUtcDay, type Keys, reserveQuota, settleQuota, utcDay } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors.ts';

/**
 * Prompt size without a tokenizer: ~4 characters a token plus a few per message for the chat
 * template. Over-estimating is safe: the reservation is settled to the backend's real count.
 */
export function estimatePromptTokens(messages: ChatMessage[]): number {
  let chars = 0;
  for (const m of messages) chars += m.content.length;
  return Math.ceil(chars / 4) + 4 * messages.length + 3;
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
  async reserve(
    userId: string,
    limit: number,
    messages: ChatMessage[],
    maxTokens: number,
  ): Promise<Reservation> {
    const now = Date.now();
    const promptEstimate = estimatePromptTokens(messages);
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
