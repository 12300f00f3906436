import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { clip } from '../clip.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from './api-error.ts';
import { errorBody, errorStyleFor } from './render.ts';

/**
 * The one place an error response is built: the body in the path's wire format (render.ts), the
 * error's own headers, and always the request id.
 */
export function renderError(c: Context<AppEnv>, err: ApiError): Response {
  if (err.status >= 500) c.get('log')?.warn({ code: err.code, err: err.message }, 'request_failed');
  else c.get('log')?.info({ code: err.code, err: err.message }, 'request_rejected');
  const requestId = c.get('requestId') ?? '';
  return c.json(errorBody(err, errorStyleFor(c.req.path), requestId), err.status as ContentfulStatusCode, {
    ...err.opts.headers,
    'X-Request-ID': requestId,
  });
}

/**
 * `app.notFound`: 405 with `Allow` when the path exists for other methods (RFC 9110 §15.5.6),
 * else 404. `allowed` is method-not-allowed.ts's lookup over the app's routes.
 */
export function notFoundHandler(allowed: (path: string) => string[]): NotFoundHandler<AppEnv> {
  return function notFound(c) {
    const allow = allowed(c.req.path);
    if (allow.length > 0 && !allow.includes(c.req.method)) {
      return renderError(
        c,
        new ApiError('method_not_allowed', `${c.req.method} is not allowed on ${clip(c.req.path)}`, {
          headers: { Allow: allow.join(', ') },
        }),
      );
    }
    return renderError(c, new ApiError('not_found', `no route for ${c.req.method} ${clip(c.req.path)}`));
  };
}

/** `app.onError`: an {@link ApiError} as itself; anything else is logged and becomes a bare 500. */
export const onErrorHandler: ErrorHandler<AppEnv> = function onError(err, c) {
  if (err instanceof ApiError) return renderError(c, err);
  c.get('log')?.error({ err }, 'unhandled_error');
  return renderError(c, new ApiError('internal_error', 'internal error'));
};
