import type { Logger } from '@llmgw/observability';
import type { MiddlewareHandler } from 'hono';
import { requestId as honoRequestId } from 'hono/request-id';
import { clip, loggablePath } from '../clip.ts';
import type { AppEnv } from '../context.ts';
import type { ApiMetrics } from '../metrics.ts';
import { whenResponseEnds } from '../response-end.ts';

export interface RequestContextOptions {
  log: Logger;
  metrics: ApiMetrics;
}

/**
 * Request id (an inbound `X-Request-ID` of ≤ 255 `[\w\-=]` characters is kept, else a new one;
 * echoed on the response), a child logger that carries it, and the `request_started` /
 * `request_completed` lines. Completion is logged when the response has really ended — for a
 * stream that is the last frame, not the moment the handler returned.
 */
export function requestContext({ log, metrics }: RequestContextOptions): MiddlewareHandler<AppEnv> {
  const assignId = honoRequestId({ headerName: 'X-Request-ID' });
  return async function requestContextMiddleware(c, next) {
    return assignId(c, async () => {
      const started = performance.now();
      c.set('startedAt', started);
      const reqLog = log.child({ request_id: c.get('requestId') });
      c.set('log', reqLog);
      reqLog.info({ method: c.req.method, path: loggablePath(c.req.path) }, 'request_started');
      await next();
      const complete = () => {
        const model = c.get('model');
        const seconds = (performance.now() - started) / 1000;
        const labels = {
          route: c.req.routePath || 'unmatched',
          method: c.req.method,
          status: String(c.res.status),
        };
        metrics.httpRequests.inc(labels);
        metrics.httpDuration.observe(labels, seconds);
        reqLog.info(
          {
            method: c.req.method,
            route: c.req.routePath,
            status: c.res.status,
            latency_ms: Math.round((performance.now() - started) * 100) / 100,
            user_id: c.get('userId'),
            model: model === undefined ? undefined : clip(model),
            tokens: c.get('tokens'),
          },
          'request_completed',
        );
      };
      whenResponseEnds(c, complete);
    });
  };
}
