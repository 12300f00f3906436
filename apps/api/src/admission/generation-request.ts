import type { ChatMessage, GenerationParams } from '@llmgw/protocol';

/** One generation request, as admission and then the queue see it (built by routes/generation.ts). */
export interface GenerationRequest {
  /** `completion`: a legacy text completion of `prompt` (/v1/completions). */
  kind?: 'chat' | 'completion';
  model: string;
  messages: ChatMessage[];
  prompt?: string;
  params: GenerationParams;
  requestId: string;
  /** The authenticated caller, never what the body claims. */
  userId?: string;
  tier?: string;
}
