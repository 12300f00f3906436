import type { ChatMessage, Delta, ErrorType, GenerationParams, Usage } from '@llmgw/protocol';

export interface GenerateRequest {
  /** `chat`: messages; `completion`: a legacy text completion of `prompt`. */
  kind: 'chat' | 'completion';
  model: string;
  messages: ChatMessage[];
  prompt?: string;
  params: GenerationParams;
}

export interface GenerateResult {
  /** OpenAI vocabulary: stop | length | tool_calls | content_filter. */
  finishReason: string;
  /** The stop sequence that ended the answer, when the backend names it. */
  stopSequence?: string;
  usage: Usage;
  /** Time from the request to the first token, ms. */
  ttftMs?: number;
}

export interface GenerateHooks {
  signal: AbortSignal;
  /** Every piece of the answer, in the backend's order (text, reasoning, tool-call fragments, …). */
  onDelta(delta: Delta): void;
  /**
   * Something the backend sent that the gateway does not relay (a field name, e.g.
   * `delta.audio`, or `content_block.server_tool_use`): counted and logged, never silently lost.
   */
  onDropped(what: string): void;
}

/** A streaming LLM backend. Implementations throw {@link BackendError} for anything that fails. */
export interface Backend {
  readonly provider: string;
  /** Where it is (LLM_BASE_URL): the generation span's `server.address` and `server.port`. */
  readonly baseURL: string;
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
