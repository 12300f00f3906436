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
  /** Answered by the HTTP server itself, before any route (client-error.ts). */
  request_timeout: 408,
  payload_too_large: 413,
  rate_limit_exceeded: 429,
  quota_exceeded: 429,
  /** The user's tier caps jobs in flight (`max_waiting`, `max_concurrent`); retryable. */
  concurrency_limit_exceeded: 429,
  /** Answered by the HTTP server itself, before any route (client-error.ts). */
  request_header_fields_too_large: 431,
  internal_error: 500,
  backend_error: 502,
  /** No backend could serve it: refused everywhere, or every worker's circuit breaker is open. */
  backend_unavailable: 503,
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

/** Seconds a client is asked to wait after a failure that a retry later may not hit. */
const RETRY_AFTER_S: Partial<Record<ErrorCode, number>> = {
  backend_unavailable: 5,
  queue_timeout: 2,
  shutting_down: 1,
  worker_shutdown: 1,
};

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
