import type { ApiError } from './errors.ts';

/** OpenAI's `type` for a status, as its SDKs and clients expect it. */
function openAIType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return 'server_error';
}

export type ErrorStyle = 'seed' | 'openai';

/** Routes under /v1 speak OpenAI's dialect; everything else the seed's. */
export const errorStyleFor = (path: string): ErrorStyle => (path.startsWith('/v1/') ? 'openai' : 'seed');

/**
 * The body of an error response.
 * - seed: `{"error":"<code>","message":"…","request_id":"…",…details}` — the seed's
 *   `{"error":"rate_limit_exceeded","limit":10,"window":"1m"}` plus a message and the request id.
 * - openai: `{"error":{"message","type","param","code"}}`.
 */
export function errorBody(err: ApiError, style: ErrorStyle, requestId: string): Record<string, unknown> {
  if (style === 'openai') {
    return {
      error: {
        message: err.message,
        type: openAIType(err.status),
        param: err.opts.param ?? null,
        code: err.code,
        request_id: requestId,
        ...err.opts.details,
      },
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

/** The error frame that ends a stream: `data: {"error":{…}}` on /chat, OpenAI's error object on /v1. */
export function errorFrame(err: ApiError, requestId: string): string {
  return `data: ${JSON.stringify({ error: { type: err.code, code: err.code, message: err.message, request_id: requestId } })}\n\n`;
}
