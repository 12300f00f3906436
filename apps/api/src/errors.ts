import type { ErrorType } from '@llmgw/protocol';

/**
 * The one error vocabulary of the api. Handlers throw {@link ApiError}; `onError` renders it,
 * in the seed's shape on `/chat` and in OpenAI's shape on `/v1/*` (see render-error.ts).
 */
export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  model_not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  rate_limit_exceeded: 429,
  quota_exceeded: 429,
  internal_error: 500,
  backend_error: 502,
  backend_unavailable: 502,
  backend_bad_request: 502,
  backend_rate_limited: 502,
  worker_lost: 502,
  service_unavailable: 503,
  server_overloaded: 503,
  queue_timeout: 503,
  model_unavailable: 503,
  model_paused: 503,
  shutting_down: 503,
  cancelled: 503,
  worker_shutdown: 503,
  backend_timeout: 504,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ApiErrorOptions {
  /** The request field at fault (OpenAI's `param`). */
  param?: string;
  /** Extra top-level fields of the seed-shape body, e.g. `{ queue_depth: 30 }`. */
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

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
  return new ApiError(code, message);
}
