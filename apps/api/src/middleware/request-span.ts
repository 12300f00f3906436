import { context, propagation, SpanKind, SpanStatusCode, trace, tracer } from '@llmgw/observability';
import type { MiddlewareHandler } from 'hono';
import { clip, loggablePath } from '../clip.ts';
import type { AppEnv } from '../context.ts';
import { whenResponseEnds } from '../response-end.ts';

/** Not traced: probes and scrapes, every few seconds, would bury the requests. */
const UNTRACED = new Set(['/livez', '/ready', '/health', '/metrics']);

const headerGetter = {
  get: (h: Headers, key: string) => h.get(key) ?? undefined,
  keys: (h: Headers) => [...h.keys()],
};

/**
 * Tracing on: each request is a SERVER span, the parent of everything the request does (its
 * admission, its enqueue, the job's spans in the worker, its relay), continuing the client's
 * `traceparent` when it sent one. The span carries the request id (`llmgw.request_id`, as in
 * every log line of the request), and the request's later log lines carry `trace_id`. It ends
 * when the response has ended: for a stream, at its last frame.
 */
export function requestSpan(): MiddlewareHandler<AppEnv> {
  return async function requestSpanMiddleware(c, next) {
    if (UNTRACED.has(c.req.path)) return next();
    const parent = propagation.extract(context.active(), c.req.raw.headers, headerGetter);
    const span = tracer.startSpan(
      c.req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': c.req.method,
          'url.path': loggablePath(c.req.path),
          'llmgw.request_id': c.get('requestId'),
          ...(c.req.header('user-agent') !== undefined && {
            'user_agent.original': clip(c.req.header('user-agent')!),
          }),
        },
      },
      parent,
    );
    c.set('log', c.get('log').child({ trace_id: span.spanContext().traceId }));
    try {
      await context.with(trace.setSpan(parent, span), next);
    } finally {
      whenResponseEnds(c, () => {
        const route = c.req.routePath;
        if (route && route !== '/*' && route !== '*') {
          span.updateName(`${c.req.method} ${route}`);
          span.setAttribute('http.route', route);
        }
        const status = c.res.status;
        span.setAttribute('http.response.status_code', status);
        const principal = c.get('principal');
        if (principal)
          span.setAttributes({ 'llmgw.user_id': principal.userId, 'llmgw.tier': principal.tier });
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
    }
  };
}
