import type { Route } from './context.ts';
import { sendJson } from './errors.ts';
import { statsBody } from './stats.ts';

/** `GET /metrics`: Prometheus text with vLLM's metric names. */
export const metricsRoute: Route = {
  method: 'GET',
  path: '/metrics',
  errorFormat: 'openai',
  async handle(ctx, _req, res) {
    const text = await ctx.metrics.render();
    res.writeHead(200, {
      'content-type': ctx.metrics.contentType,
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  },
};

/** `GET /sim/stats`: counters for tests (not part of vLLM). */
export const statsRoute: Route = {
  method: 'GET',
  path: '/sim/stats',
  errorFormat: 'openai',
  handle(ctx, _req, res) {
    sendJson(res, 200, statsBody(ctx.stats.snapshot()));
  },
};

/**
 * `POST /sim/stats/reset`: zeroes the counters and peak_running and empties the request log (a
 * test starting afresh wants both); answers with the fresh stats.
 */
export const statsResetRoute: Route = {
  method: 'POST',
  path: '/sim/stats/reset',
  errorFormat: 'openai',
  handle(ctx, req, res) {
    req.resume();
    ctx.stats.reset();
    ctx.requests.clear();
    sendJson(res, 200, statsBody(ctx.stats.snapshot()));
  },
};

/** `GET /sim/requests`: the last generation request bodies as received, oldest first (not part of vLLM). */
export const requestsRoute: Route = {
  method: 'GET',
  path: '/sim/requests',
  errorFormat: 'openai',
  handle(ctx, _req, res) {
    sendJson(res, 200, { requests: ctx.requests.list() });
  },
};

/** `POST /sim/requests/reset`: empties the request log. */
export const requestsResetRoute: Route = {
  method: 'POST',
  path: '/sim/requests/reset',
  errorFormat: 'openai',
  handle(ctx, req, res) {
    req.resume();
    ctx.requests.clear();
    sendJson(res, 200, { requests: [] });
  },
};
