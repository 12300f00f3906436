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

/**
 * The `usage` field of a stream's chunks: `,"usage":null` with `include_usage` (nothing without),
 * or with vLLM's `continuous_usage_stats` the usage so far in every chunk.
 */
export function chunkUsage(
  includeUsage: boolean,
  continuous: boolean,
  promptTokens: number,
): { none: string; now(generated: number): string } {
  const none = includeUsage ? ',"usage":null' : '';
  return {
    none,
    now: (generated) =>
      continuous ? `,"usage":${JSON.stringify(openAIUsage(promptTokens, generated))}` : none,
  };
}
