import type { ServerResponse } from 'node:http';

/** The error kinds the simulator produces; each wire format names them its own way. */
export type ErrorKind = 'bad_request' | 'not_found' | 'too_large' | 'rate_limit' | 'server_error';

const STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  not_found: 404,
  too_large: 413,
  rate_limit: 429,
  server_error: 500,
};

/** vLLM's OpenAI server names the error type after the HTTP status class. */
const OPENAI_TYPE: Record<ErrorKind, string> = {
  bad_request: 'BadRequestError',
  not_found: 'NotFoundError',
  too_large: 'BadRequestError',
  rate_limit: 'RateLimitError',
  server_error: 'InternalServerError',
};

/** https://docs.anthropic.com/en/api/errors */
const ANTHROPIC_TYPE: Record<ErrorKind, string> = {
  bad_request: 'invalid_request_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  rate_limit: 'rate_limit_error',
  server_error: 'api_error',
};

export type ErrorFormat = 'openai' | 'anthropic';

/** Thrown by handlers; rendered once, in the route's wire format, by {@link sendError}. */
export class SimError extends Error {
  override name = 'SimError';

  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly extra: { param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }

  get status(): number {
    return STATUS[this.kind];
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, format: ErrorFormat, err: unknown): void {
  // Once a stream has started the status line is gone; cutting the connection is all that is left.
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = err instanceof SimError ? err : new SimError('server_error', 'Internal server error');
  const body =
    format === 'openai'
      ? {
          error: {
            message: e.message,
            type: OPENAI_TYPE[e.kind],
            param: e.extra.param ?? null,
            code: e.status,
          },
        }
      : { type: 'error', error: { type: ANTHROPIC_TYPE[e.kind], message: e.message } };
  sendJson(res, e.status, body, e.extra.headers);
}
