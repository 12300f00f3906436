import type { Route } from './context.ts';
import { sendJson } from './errors.ts';

/** Reported by `GET /version`; the `+sim` suffix tells a simulator from a real vLLM. */
export const SIM_VERSION = '0.1.0+sim';

/** `GET /v1/models`: one entry per served model name, as vLLM lists `--served-model-name`. */
export const modelsRoute: Route = {
  method: 'GET',
  path: '/v1/models',
  errorFormat: 'openai',
  handle(ctx, _req, res) {
    const root = ctx.options.models[0]!;
    sendJson(res, 200, {
      object: 'list',
      data: ctx.options.models.map((id) => ({
        id,
        object: 'model',
        created: ctx.startedAt,
        owned_by: 'vllm',
        root,
        parent: null,
        max_model_len: ctx.options.maxModelLen,
      })),
    });
  },
};

/** `GET /health`: 200 with an empty body, like vLLM. */
export const healthRoute: Route = {
  method: 'GET',
  path: '/health',
  errorFormat: 'openai',
  handle(_ctx, _req, res) {
    res.writeHead(200, { 'content-length': 0 });
    res.end();
  },
};

export const versionRoute: Route = {
  method: 'GET',
  path: '/version',
  errorFormat: 'openai',
  handle(_ctx, _req, res) {
    sendJson(res, 200, { version: SIM_VERSION });
  },
};
