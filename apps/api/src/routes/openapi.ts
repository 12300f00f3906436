import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describeRoute, generateSpecs } from 'hono-openapi';
import type { GatewayApp } from '../hono-app.ts';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

const DESCRIPTION = `An LLM serving gateway: OpenAI Chat Completions and legacy completions, Anthropic Messages and a
minimal \`/chat\`, on one queue, one set of keys and limits, to any backend. Generated from the zod
schemas that validate the requests (docs/api.md explains each endpoint).

**Errors** come in the path's own shape: OpenAI's \`{"error":{…}}\` on \`/v1\`, Anthropic's
\`{"type":"error",…}\` on \`/v1/messages…\`, \`{"error":"<code>",…}\` elsewhere; every one carries the request
id (also in \`X-Request-ID\`). Besides the statuses listed per operation, any path may answer 405
\`method_not_allowed\` (another method exists; \`Allow\` lists them) in its family's shape, and the HTTP
server itself 408 \`request_timeout\` and 431 \`request_header_fields_too_large\` in the \`SeedError\` shape.`;

/**
 * `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (Swagger UI), both public: no key, no Redis.
 * The document is generated from the app's own routes, each of which states its request and
 * answers with `describeRoute` (openapi/describe.ts) beside its registration, so it lists what
 * is served. Routes without a description are left out: `/metrics` and `/admin…`, the
 * operators' surface (behind ADMIN_TOKEN, not routed by deploy/nginx.conf). Register last: the
 * document is built, once, from the routes registered before its first request.
 */
export function registerOpenApi(app: GatewayApp): void {
  let document: Promise<object> | undefined;
  const describe = describeRoute({
    tags: ['meta'],
    summary: 'This document (OpenAPI 3.1)',
    security: [],
    responses: {
      200: { description: 'the document', content: { 'application/json': { schema: { type: 'object' } } } },
    },
  });
  app.get(OPENAPI_PATH, describe, async (c) => {
    document ??= openApiDocument(app);
    return c.json(await document);
  });
  registerDocsPage(app);
}

/** The OpenAPI document of `app`'s described routes. */
function openApiDocument(app: GatewayApp): Promise<object> {
  return generateSpecs(app, {
    excludeStaticFile: false,
    documentation: {
      info: { title: 'llm-gateway', version: '0.1.0', description: DESCRIPTION },
      tags: [
        { name: 'generation', description: 'text generation, streamed or not' },
        { name: 'models', description: 'the models that live workers serve' },
        { name: 'jobs', description: 'durable generations: status, resume, cancel' },
        { name: 'usage', description: "the caller's jobs and tokens, per day, key, model or outcome" },
        { name: 'files', description: 'files for the Batch API: upload, read, list, delete' },
        {
          name: 'batches',
          description: 'the Batch API: requests run in idle slots, answers in an output file',
        },
        { name: 'health', description: 'probes; no key needed' },
        { name: 'meta', description: 'this document and its page' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'an API key (`pnpm keys create`), as `Authorization: Bearer <key>`',
          },
          xApiKey: {
            type: 'apiKey',
            in: 'header',
            name: 'x-api-key',
            description:
              "the same API key as Anthropic's clients send it. With AUTH_MODE=trusted_headers neither is read: a proxy in front authenticates and sets `X-User-ID` (and `X-User-Tier`)",
          },
        },
      },
    },
  });
}

/**
 * Swagger UI from the swagger-ui-dist package, served by this process: the page works with no
 * internet access (no CDN).
 */
function registerDocsPage(app: GatewayApp): void {
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const assets: Record<string, string> = {
    'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
    'swagger-ui.css': 'text/css; charset=utf-8',
  };
  const cache = new Map<string, Buffer>();
  for (const [name, type] of Object.entries(assets)) {
    app.get(`${DOCS_PATH}/${name}`, (c) => {
      let body = cache.get(name);
      if (!body) {
        body = readFileSync(join(dist, name));
        cache.set(name, body);
      }
      return c.body(new Uint8Array(body), 200, {
        'Content-Type': type,
        'Cache-Control': 'public, max-age=86400',
      });
    });
  }
  const describe = describeRoute({
    tags: ['meta'],
    summary: 'This document as a page (Swagger UI, served locally)',
    security: [],
    responses: {
      200: { description: 'an HTML page', content: { 'text/html': { schema: { type: 'string' } } } },
    },
  });
  app.get(DOCS_PATH, describe, (c) => c.html(DOCS_PAGE));
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>llm-gateway API</title>
  <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '${OPENAPI_PATH}', dom_id: '#swagger-ui', deepLinking: true });
  </script>
</body>
</html>
`;
