import { randomUUID } from 'node:crypto';

/** Response headers of every event stream; `x-accel-buffering` keeps nginx from buffering tokens. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

/** 32 hex digits, the shape of vLLM's `random_uuid()`. */
export function randomHex(): string {
  return randomUUID().replaceAll('-', '');
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** OpenAI's `usage` object, in vLLM's key order. */
export function openAIUsage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
  };
}
