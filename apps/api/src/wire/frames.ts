import type { Delta, DoneEvent } from '@llmgw/protocol';
import type { ApiError } from '../errors/index.ts';

/**
 * How one wire format spells a stream. Each method returns complete SSE text (`data: …\n\n`,
 * or `event: …\ndata: …\n\n`); a format may keep state between calls (Anthropic's content
 * blocks), so one is made per request.
 */
export interface FrameFormat {
  /** Sent once, before anything else (e.g. OpenAI's role chunk); may be empty. */
  open(): string;
  deltas(deltas: readonly Delta[]): string;
  done(ev: DoneEvent): string;
  error(err: ApiError): string;
}

/** OpenAI's usage object from ours. */
export function openAIUsage(u: { promptTokens: number; completionTokens: number }) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
  };
}
