import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AppEnv } from '../context.ts';
import { onErrorHandler } from '../errors/index.ts';
import { bodyLimit, MAX_JSON_DEPTH, readJsonBody } from './json-body.ts';

const Order = z.object({
  items: z.array(z.object({ sku: z.string().min(1), qty: z.number().int().min(1) })).min(1),
  note: z.string().max(10).optional(),
  express: z.boolean().default(false),
});

/** Echoes the validated body, on a seed path and on an OpenAI (/v1) path. */
function echoApp() {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('requestId', 'req-json');
    await next();
  });
  for (const path of ['/orders', '/v1/orders'])
    app.post(path, async (c) => c.json(await readJsonBody(c, Order)));
  app.onError(onErrorHandler);
  return app;
}

const order = { items: [{ sku: 'a', qty: 2 }] };
const send = (body: string, contentType?: string, path = '/orders') =>
  echoApp().request(path, {
    method: 'POST',
    body,
    ...(contentType !== undefined && { headers: { 'content-type': contentType } }),
  });

describe('readJsonBody', () => {
  it.each([
    ['application/json', 'application/json'],
    ['curl -d’s form type', 'application/x-www-form-urlencoded'],
    ['text/plain', 'text/plain'],
    ['none', undefined],
  ])(
    'reads the body as JSON whatever the Content-Type says (%s), and returns the parsed value',
    async (_l, ct) => {
      const res = await send(JSON.stringify(order), ct);
      expect(res.status).toBe(200);
      // The schema's default is filled in: the handler gets the parsed value, not the raw JSON.
      expect(await res.json()).toEqual({ ...order, express: false });
    },
  );

  it.each([
    ['empty', ''],
    ['only blanks', ' \n\t '],
  ])('an %s body: 400 invalid_json', async (_l, raw) => {
    const res = await send(raw, 'application/json');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_json',
      message: 'request body is empty; send a JSON object',
      request_id: 'req-json',
    });
  });

  it.each([
    ['truncated', '{"items": ['],
    ['a form body', 'items=a&qty=2'],
    ['trailing comma', '{"items": [],}'],
  ])('invalid JSON (%s): 400 invalid_json with the parser’s reason, no param', async (_l, raw) => {
    const res = await send(raw, 'application/x-www-form-urlencoded');
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe('invalid_json');
    expect(String(body.message)).toMatch(/^request body is not valid JSON: \S/);
    expect(body).not.toHaveProperty('param');
  });

  it('a schema violation: 400 invalid_request; `param` and the message name the first issue’s field', async () => {
    const res = await send(JSON.stringify({ items: [{ sku: 'a', qty: 0 }], note: 'far too long a note' }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'invalid_request', param: 'items.0.qty' });
    expect(String(body.message)).toMatch(/^items\.0\.qty: /);
    expect(String(body.message)).toContain('>=1');
  });

  it('on /v1 the param is OpenAI’s `param`', async () => {
    const res = await send(JSON.stringify({ items: [] }), undefined, '/v1/orders');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', code: 'invalid_request', param: 'items' },
    });
  });

  it('a body that is not an object: the message says `body`, and there is no param', async () => {
    const res = await send('[1, 2]');
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe('invalid_request');
    expect(String(body.message)).toMatch(/^body: /);
    expect(body).not.toHaveProperty('param');
  });
  it('a body nested deeper than MAX_JSON_DEPTH is a 400 invalid_json; at the limit it is read', async () => {
    const nest = (levels: number) =>
      `{"items":[{"sku":"a","qty":1}],"x":${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}}`;
    const deep = await send(nest(10_000), 'application/json', '/v1/orders');
    expect(deep.status).toBe(400);
    expect(await deep.json()).toMatchObject({
      error: { code: 'invalid_json', message: `request body nests deeper than ${MAX_JSON_DEPTH} levels` },
    });
    expect((await send(nest(MAX_JSON_DEPTH + 1), 'application/json')).status).toBe(400);
    expect((await send(nest(MAX_JSON_DEPTH), 'application/json')).status).toBe(200);
  });
});

describe('bodyLimit', () => {
  it('refuses a declared body over the limit, but on a path that limits its body itself', async () => {
    const app = new Hono<AppEnv>();
    app.use(async (c, next) => {
      c.set('requestId', 'req-limit');
      await next();
    });
    app.use(bodyLimit(10, { ownLimit: ['/v1/files'] }));
    for (const path of ['/v1/files', '/v1/files/x', '/chat'])
      app.post(path, async (c) => c.text(String((await c.req.text()).length)));
    app.onError(onErrorHandler);
    const post = (path: string) =>
      app.request(path, { method: 'POST', body: 'x'.repeat(100), headers: { 'content-length': '100' } });
    const own = await post('/v1/files');
    expect(own.status).toBe(200);
    expect(await own.text()).toBe('100');
    for (const path of ['/v1/files/x', '/chat']) {
      const res = await post(path);
      expect(res.status).toBe(413);
      expect(res.headers.get('connection')).toBe('close');
    }
  });
});
