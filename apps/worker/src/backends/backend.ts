import type { ChatMessage, ErrorType, GenerationParams, Usage } from '@llmgw/protocol';

export interface GenerateRequest {
  model: string;
  messages: ChatMessage[];
  params: GenerationParams;
}

export interface GenerateResult {
  /** OpenAI vocabulary: stop | length | tool_calls | content_filter. */
  finishReason: string;
  usage: Usage;
  /** Time from the request to the first token, ms. */
  ttftMs?: number;
}

export interface GenerateHooks {
  signal: AbortSignal;
  onToken(text: string): void;
}

/** A streaming LLM backend. Implementations throw {@link BackendError} for anything that fails. */
export interface Backend {
  readonly provider: string;
  generate(req: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult>;
}

/** A backend failure in our vocabulary, with what was generated before it. */
export class BackendError extends Error {
  override name = 'BackendError';
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly status?: number,
    readonly partialUsage?: Usage,
  ) {
    super(message);
  }
}
