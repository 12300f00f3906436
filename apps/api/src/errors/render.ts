import { STATUS_CODES } from 'node:http';
import type { ApiError } from './api-error.ts';

/** OpenAI's `type` for a status, as its SDKs and clients expect it. */
function openAIType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return 'server_error';
}

/** Anthropic's error `type` for a status (https://docs.anthropic.com/en/api/errors). */
function anthropicType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status < 500) return 'invalid_request_error';
  return 'api_error';
}

export type ErrorStyle = 'seed' | 'openai' | 'anthropic';

/** `/v1/messages` speaks Anthropic's dialect, the rest of /v1 OpenAI's, everything else the seed's. */
export const errorStyleFor = (path: string): ErrorStyle =>
  path === '/v1/messages' || path.startsWith('/v1/messages/')
    ? 'anthropic'
    : path.startsWith('/v1/')
      ? 'openai'
      : 'seed';

/**
 * OpenAI's code for a spent quota is `insufficient_quota`, which its clients treat as final
 * (a rate limit is `rate_limit_exceeded`, retried after Retry-After).
 */
const openAICode = (err: ApiError): string =>
  err.code === 'quota_exceeded' ? 'insufficient_quota' : err.code;

/**
 * The body of an error response.
 * - seed: `{"error":"<code>","message":"…","request_id":"…",…details}` — the seed's
 *   `{"error":"rate_limit_exceeded","limit":10,"window":"1m"}` plus a message and the request id.
 * - openai: `{"error":{"message","type","param","code"}}`.
 * - anthropic: `{"type":"error","error":{"type","message"},"request_id"}`.
 */
export function errorBody(err: ApiError, style: ErrorStyle, requestId: string): Record<string, unknown> {
  if (style === 'openai') {
    const code = openAICode(err);
    return {
      error: {
        message: err.message,
        // A spent quota or budget: the type OpenAI's clients read as final.
        type:
          code === 'insufficient_quota' || code === 'budget_exceeded'
            ? 'insufficient_quota'
            : openAIType(err.status),
        param: err.opts.param ?? null,
        code,
        request_id: requestId,
        ...err.opts.details,
      },
    };
  }
  if (style === 'anthropic') {
    return {
      type: 'error',
      error: { type: anthropicType(err.status), message: err.message, code: err.code, ...err.opts.details },
      request_id: requestId,
    };
  }
  return {
    error: err.code,
    message: err.message,
    ...(err.opts.param !== undefined && { param: err.opts.param }),
    ...err.opts.details,
    request_id: requestId,
  };
}

/**
 * The error frame that ends a stream, in the stream's own format: `data: {"error":{…}}` on
 * `/chat` and the OpenAI endpoints (the body an error response would have), Anthropic's `error`
 * event on `/v1/messages`.
 */
export function errorFrame(err: ApiError, style: ErrorStyle, requestId: string): string {
  if (style === 'anthropic')
    return `event: error\ndata: ${JSON.stringify(errorBody(err, style, requestId))}\n\n`;
  if (style === 'openai') return `data: ${JSON.stringify(errorBody(err, style, requestId))}\n\n`;
  return `data: ${JSON.stringify({ error: { type: err.code, code: err.code, message: err.message, request_id: requestId } })}\n\n`;
}

/**
 * A whole HTTP/1.1 error response as bytes for a socket no request object exists for (Node's
 * parser refused the request, client-error.ts): the seed's body, and `Connection: close`, since
 * the rest of what the client sent cannot be parsed.
 */
export function rawErrorResponse(err: ApiError, requestId: string): string {
  const body = JSON.stringify(errorBody(err, 'seed', requestId));
  return [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-ID: ${requestId}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
