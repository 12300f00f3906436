import type { ErrorType } from '@llmgw/protocol';
import { ERROR_STATUS, type ErrorCode, RETRY_AFTER_S } from './codes.ts';

export interface ApiErrorOptions {
  /** The request field at fault (OpenAI's `param`). */
  param?: string;
  /** Extra top-level fields of the seed-shape body, e.g. `{ queue_depth: 30 }`. */
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** What handlers and middleware throw; the app's `onError` (handler.ts) renders it. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly opts: ApiErrorOptions = {},
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/** A job's error event, as the client sees it. */
export function apiErrorFromJob(type: ErrorType, message: string): ApiError {
  const code: ErrorCode = type === 'invalid_job' ? 'internal_error' : type;
  const retryAfter = RETRY_AFTER_S[code];
  return new ApiError(
    code,
    message,
    retryAfter === undefined ? {} : { headers: { 'Retry-After': String(retryAfter) } },
  );
}
