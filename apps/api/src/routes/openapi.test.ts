import { randomUUID } from 'node:crypto';
import { LogCapture, OpenApiChecker, type OpenApiDocument, spawnRedisServer } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createRedis, waitReady } from '@llmgw/redis';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeApi } from '../compose.ts';
import { parseApiEnv } from '../env.ts';
import { ApiError, ERROR_STATUS, type ErrorCode, errorBody, errorFrame } from '../errors/index.ts';
import { FileUploadFields } from '../files/bodies.ts';
import type { HealthReport } from '../health/checks.ts';
import { buildTestApp, type TestApp } from '../testing/app-deps.ts';
import { MessagesRequest } from '../wire/anthropic-request.ts';
import { ChatRequest } from './chat.ts';

let t: TestApp;
let doc: OpenApiDocument & Record<string, unknown>;
beforeAll(async () => {
  t = await buildTestApp();
  doc = (await (await t.app.request('/openapi.json')).json()) as typeof doc;
});
afterAll(() => t?.close());

/** The document's schema of a request body, as a validator. */
const requestSchema = (checker: OpenApiChecker, path: string) =>
  checker.schemaAt(`/paths/${path.replaceAll('/', '~1')}/post/requestBody/content/application~1json/schema`);

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every public route the app serves, and only those', () => {
    // Middleware (ALL) is not a route; /metrics and /admin… are the operators' (see openapi.ts),
    // the Swagger UI assets are the /docs page's.
    const served = t.app.routes
      .filter((r) => r.method !== 'ALL')
      .filter((r) => r.path !== '/metrics' && !r.path.startsWith('/admin') && !r.path.startsWith('/docs/'))
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops ?? {}).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect([...new Set(documented)].sort()).toEqual([...new Set(served)].sort());
    expect(documented).toContain('POST /v1/messages/count_tokens');
    expect(documented).toContain('GET /v1/jobs/{id}/events');
    expect(documented).toContain('GET /v1/files/{id}/content');
    expect(documented).toContain('POST /v1/batches/{id}/cancel');
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin'))).toBe(false);
  });

  it('states the auth schemes, and which routes need a key', () => {
    const schemes = (doc.components as { securitySchemes: Record<string, Record<string, string>> })
      .securitySchemes;
    expect(schemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(schemes.xApiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    const security = (path: string, m: string) =>
      (doc.paths[path]?.[m] as { security?: unknown } | undefined)?.security;
    expect(security('/v1/chat/completions', 'post')).toEqual([{ bearer: [] }, { xApiKey: [] }]);
    expect(security('/livez', 'get')).toEqual([]);
    expect(security('/openapi.json', 'get')).toEqual([]);
  });

  it('describes a request body by the schema that validates it: both take and refuse the same bodies', () => {
    const checker = new OpenApiChecker(doc);
    const cases: [string, { safeParse(v: unknown): { success: boolean } }, unknown[]][] = [
      [
        '/chat',
        ChatRequest,
        [
          { messages: [{ role: 'user', content: 'hi' }] },
          { messages: [{ role: 'user', content: 'hi' }], stream: false, max_tokens: 8 },
          { messages: [] },
          { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000 },
          { messages: [{ role: 'wizard', content: 'hi' }] },
          { max_tokens: 8 },
        ],
      ],
      [
        '/v1/messages',
        MessagesRequest,
        [
          // A string is one text block: the document says so (openapi/input-doc.ts).
          { max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
          { max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
          { max_tokens: 8, system: 'be brief', messages: [{ role: 'user', content: 'hi' }] },
          {
            max_tokens: 8,
            messages: [{ role: 'user', content: 'hi' }],
            tools: [{ name: 'f', input_schema: {} }],
          },
          { max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'f' }] },
          { max_tokens: 8, messages: [{ role: 'user', content: 5 }] },
          { messages: [{ role: 'user', content: 'hi' }] },
        ],
      ],
    ];
    for (const [path, schema, bodies] of cases) {
      const documented = requestSchema(checker, path);
      for (const body of bodies) {
        expect({ path, body, valid: documented(body) }).toEqual({
          path,
          body,
          valid: schema.safeParse(body).success,
        });
      }
    }
  });

  it('describes the file upload’s form by the fields it validates', () => {
    const documented = new OpenApiChecker(doc).schemaAt(
      '/paths/~1v1~1files/post/requestBody/content/multipart~1form-data/schema',
    );
    const forms: Record<string, string>[] = [
      { purpose: 'batch' },
      { purpose: 'fine-tune' },
      { purpose: 'batch', 'expires_after[anchor]': 'created_at', 'expires_after[seconds]': '7200' },
      { purpose: 'batch', 'expires_after[anchor]': 'created', 'expires_after[seconds]': '7200' },
      { purpose: 'batch', 'expires_after[anchor]': 'created_at', 'expires_after[seconds]': '2h' },
      {},
    ];
    for (const fields of forms) {
      expect({ fields, valid: documented({ ...fields, file: '{}' }) }).toEqual({
        fields,
        valid: FileUploadFields.safeParse(fields).success,
      });
    }
    expect(documented({ purpose: 'batch' })).toBe(false); // the file is required
  });

  it('catches a drift: real answers match the document, and fail a copy with one schema wrong', async () => {
    const answers = async () => [
      { method: 'GET', path: '/livez', res: await t.app.request('/livez') },
      { method: 'POST', path: '/chat', res: await t.app.request('/chat', { method: 'POST', body: '{}' }) },
    ];
    const checker = new OpenApiChecker(doc);
    for (const a of await answers()) await checker.checkResponse(a.method, a.path, a.res);
    expect(checker.checked.map((c) => c.status)).toEqual([200, 401]);

    const drifted = structuredClone(doc) as unknown as {
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    drifted.components.schemas.LiveReport!.properties.shutting_down = { type: 'string' };
    drifted.components.schemas.SeedError!.properties.request_id = { type: 'integer' };
    const strict = new OpenApiChecker(drifted as unknown as OpenApiDocument);
    for (const a of await answers()) {
      await expect(strict.checkResponse(a.method, a.path, a.res)).rejects.toThrow(
        /does not match the document/,
      );
    }
  });
});

describe('every error code in every wire format', () => {
  it('renders bodies and stream error frames that the document describes (those no live test can make too)', () => {
    const checker = new OpenApiChecker(doc);
    const families = [
      { style: 'seed', body: 'SeedError', frame: 'SeedFrame' },
      { style: 'openai', body: 'OpenAIError', frame: 'ChatCompletionFrame' },
      { style: 'anthropic', body: 'AnthropicError', frame: 'AnthropicStreamEvent' },
    ] as const;
    for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
      const err = new ApiError(code, `a ${code}`, { param: 'x', details: { queue_depth: 3 } });
      for (const f of families) {
        const body = JSON.stringify(errorBody(err, f.style, 'req-1'));
        checker.validateBody(`${code} ${f.style}`, checker.component(f.body), 'application/json', body);
        const frame = errorFrame(err, f.style, 'req-1');
        checker.validateBody(
          `${code} ${f.style} frame`,
          checker.component(f.frame),
          'text/event-stream',
          frame,
        );
      }
    }
  });
});

describe('GET /docs', () => {
  it('is a Swagger UI page whose script and styles this process serves (no CDN)', async () => {
    const page = await t.app.request('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain("url: '/openapi.json'");
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.sort()).toEqual(['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']);
    for (const asset of assets) {
      const res = await t.app.request(asset);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(asset.endsWith('.js') ? /javascript/ : /text\/css/);
      const body = await res.text();
      expect(body.length).toBeGreaterThan(10_000);
      if (asset.endsWith('.js')) expect(body).toContain('SwaggerUIBundle');
    }
  });
});

describe('without Redis', () => {
  it('/openapi.json and /docs answer without a key while Redis is down (and /health says it is)', async () => {
    const server = await spawnRedisServer();
    const env = parseApiEnv({
      REDIS_URL: server.url,
      KEY_PREFIX: `test-${randomUUID()}`,
      REDIS_COMMAND_TIMEOUT_MS: '200',
    });
    const log = createLogger({
      service: 'api',
      instance: 'openapi-test',
      level: 'warn',
      destination: new LogCapture(),
    });
    const redis = createRedis(env.redis, 'command', 'openapi-test:cmd');
    const subscriber = createRedis(env.redis, 'subscriber', 'openapi-test:sub');
    await Promise.all([waitReady(redis), waitReady(subscriber)]);
    const parts = await composeApi({ env, log, redis, subscriber });
    try {
      await server.stop();
      const health = await parts.app.request('/health');
      expect(health.status).toBe(503);
      expect(((await health.json()) as HealthReport).checks.redis.status).toBe('error');
      const openapi = await parts.app.request('/openapi.json');
      expect(openapi.status).toBe(200);
      expect(((await openapi.json()) as OpenApiDocument).openapi).toBe('3.1.0');
      expect((await parts.app.request('/docs')).status).toBe(200);
    } finally {
      parts.open.failAll('test over');
      await parts.stop().catch(() => {});
      redis.disconnect();
      await server.stop();
    }
  });
});
