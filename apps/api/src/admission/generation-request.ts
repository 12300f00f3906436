import type { ChatMessage, GenerationParams } from '@llmgw/protocol';
import type { KeyGrant } from '../context.ts';
import type { Rendition } from '../wire/rendition.ts';

/** How the client wants the answer: the wire format, streamed or whole, now or later. */
export interface AnswerShape {
  f: Rendition['f'];
  /** stream_options.include_usage (OpenAI formats). */
  usage?: boolean;
  stream: boolean;
  /** `Prefer: respond-async`: 202 at once, the result at GET /v1/jobs/{id}. */
  async?: boolean;
  /**
   * `Prefer: resumable` or an `Idempotency-Key`: a dropped connection leaves the job running for
   * RESUME_GRACE_MS, to be resumed or retried; otherwise the client's leaving cancels it.
   */
  resumable?: boolean;
}

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
  /** The API key's public id (api_key mode). */
  keyId?: string;
  /** The key's own rules (limits, budget; its model allowlist was checked before admission). */
  grant?: KeyGrant;
  answer: AnswerShape;
}
