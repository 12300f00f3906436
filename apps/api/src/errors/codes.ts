/**
 * The api's error vocabulary: every code a response or a stream's error frame can carry, and its
 * HTTP status. Handlers throw an {@link ApiError} (api-error.ts) with one of these; the handler
 * (handler.ts) renders it in the wire format of the path (render.ts).
 */
export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  /** A key past its `expires_at` (or a rotated key's former secret past its grace). */
  key_expired: 401,
  forbidden: 403,
  /** The key's `models` allowlist does not hold the model. */
  model_not_allowed: 403,
  not_found: 404,
  model_not_found: 404,
  method_not_allowed: 405,
  /** Answered by the HTTP server itself, before any route (client-error.ts). */
  request_timeout: 408,
  /** The job's log no longer holds its start (JOB_LOG_MAX_EVENTS): it cannot be replayed. */
  job_log_trimmed: 410,
  /** The resource's state does not allow it (rotating a revoked or expired key). */
  conflict: 409,
  /** A concurrent request with the same Idempotency-Key is still being admitted (Stripe's 409). */
  idempotency_key_in_use: 409,
  payload_too_large: 413,
  /** The same Idempotency-Key came with a different request body. */
  idempotency_key_reused: 422,
  rate_limit_exceeded: 429,
  quota_exceeded: 429,
  /** The key's monthly token budget is spent: final until the month ends (like quota_exceeded). */
  budget_exceeded: 429,
  /** The user's tier caps jobs in flight (`max_waiting`, `max_concurrent`); retryable. */
  concurrency_limit_exceeded: 429,
  /** Answered by the HTTP server itself, before any route (client-error.ts). */
  request_header_fields_too_large: 431,
  /**
   * Not an answer anybody reads: the client closed its connection before its non-streaming
   * answer, so its job was cancelled. nginx's 499, so that a "stop" shows in the logs and
   * http_requests_total as the client's doing, not as a 5xx of the gateway.
   */
  client_closed_request: 499,
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

/**
 * Seconds a client is asked to wait (Retry-After) after a job failed with one of these codes:
 * failures that a retry a little later may not hit. Errors thrown by handlers set their own.
 */
export const RETRY_AFTER_S: Partial<Record<ErrorCode, number>> = {
  backend_unavailable: 5,
  queue_timeout: 2,
  shutting_down: 1,
  worker_shutdown: 1,
};
