import { parseMetricsText, sampleValue } from '@llmgw/devkit';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './testing/app-deps.ts';

/**
 * The app as `createApp(deps)` builds it, from real parts on the shared test Redis, driven
 * in-process with `app.request()`: what the api answers by itself, before any worker is involved.
 */

const hi = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

/** Jobs of every state in a model's queue, read with BullMQ itself. */
async function jobsFor(t: TestApp, model: string): Promise<number> {
  const q = new Queue(t.keys.queueName(model), { connection: t.redis, prefix: t.keys.bullPrefix });
  try {
    const counts = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await q.close();
  }
}

describe('createApp: what a client sees before any worker', () => {
  let t: TestApp;
  let auth: Record<string, string>;
  beforeAll(async () => {
    t = await buildTestApp({ BODY_LIMIT_BYTES: '1024' });
    auth = (await t.keyOf()).headers;
  });
  afterAll(() => t?.close());

  describe('401 without a key, in the error shape of each path, before the rate limiter', () => {
    it('/chat: the seed shape', async () => {
      const res = await t.app.request('/chat', post(hi));
      expect(res.status).toBe(401);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
      expect(await json(res)).toEqual({
        error: 'unauthorized',
        message: 'missing API key: send Authorization: Bearer <key>',
        request_id: res.headers.get('x-request-id'),
      });
    });

    it('/v1/chat/completions: the OpenAI shape', async () => {
      const res = await t.app.request('/v1/chat/completions', post(hi));
      expect(res.status).toBe(401);
      expect(await json(res)).toEqual({
        error: {
          message: 'missing API key: send Authorization: Bearer <key>',
          type: 'authentication_error',
          param: null,
          code: 'unauthorized',
          request_id: res.headers.get('x-request-id'),
        },
      });
    });

    it('/v1/messages: the Anthropic shape', async () => {
      const res = await t.app.request('/v1/messages', post({ ...hi, model: 'm' }, { 'x-api-key': 'nope' }));
      expect(res.status).toBe(401);
      expect(await json(res)).toEqual({
        type: 'error',
        error: { type: 'authentication_error', message: 'invalid API key', code: 'unauthorized' },
        request_id: res.headers.get('x-request-id'),
      });
    });
  });

  describe('400 for a body the route cannot take, after the rate limiter counted it', () => {
    it.each([
      ['/chat', (b: Record<string, unknown>) => b],
      ['/v1/chat/completions', (b: Record<string, unknown>) => (b.error as Record<string, unknown>) ?? {}],
      ['/v1/messages', (b: Record<string, unknown>) => (b.error as Record<string, unknown>) ?? {}],
    ])('%s: malformed JSON is invalid_json', async (path, errorOf) => {
      const res = await t.app.request(path, post('{"messages": [', auth));
      expect(res.status).toBe(400);
      expect(res.headers.get('x-ratelimit-limit')).toBe('300');
      const body = await json(res);
      const err = errorOf(body);
      if (path === '/chat') expect(err.error).toBe('invalid_json');
      else expect(err).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });
      expect(String(err.message)).toMatch(/^request body is not valid JSON: /);
    });

    it('an unsupported content part type is named, with where it is', async () => {
      const res = await t.app.request(
        '/v1/chat/completions',
        post({ model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: {} }] }] }, auth),
      );
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({
        type: 'invalid_request_error',
        code: 'invalid_request',
        param: 'messages.0.content',
        message:
          'messages.0.content: part 0.type: content part type "file" is not supported in user messages (supported: text, image_url, input_audio)',
      });
    });
  });

  it('413 payload_too_large above BODY_LIMIT_BYTES, and the connection is not reused', async () => {
    const res = await t.app.request('/chat', post({ ...hi, pad: 'x'.repeat(2000) }, auth));
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(await json(res)).toMatchObject({
      error: 'payload_too_large',
      message: 'request body exceeds 1024 bytes',
    });
  });

  describe('unknown paths and wrong methods', () => {
    it.each([
      ['GET', '/nope', { error: 'not_found', message: 'no route for GET /nope' }],
      ['GET', '/v1/nope', { error: { code: 'not_found', type: 'not_found_error', param: null } }],
    ])('%s %s → 404 in the path’s shape', async (method, path, shape) => {
      const res = await t.app.request(path, { method, headers: auth });
      expect(res.status).toBe(404);
      expect(res.headers.get('allow')).toBeNull();
      expect(await json(res)).toMatchObject(shape);
    });

    it.each([
      ['GET', '/chat', 'POST', { error: 'method_not_allowed', message: 'GET is not allowed on /chat' }],
      [
        'DELETE',
        '/v1/chat/completions',
        'POST',
        { error: { code: 'method_not_allowed', message: 'DELETE is not allowed on /v1/chat/completions' } },
      ],
      ['POST', '/livez', 'GET, HEAD', { error: 'method_not_allowed' }],
    ])('%s %s → 405 with Allow: %s', async (method, path, allow, shape) => {
      const res = await t.app.request(path, { method, headers: auth });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(await json(res)).toMatchObject(shape);
    });
  });

  it('an unknown model is 404 model_not_found and enqueues nothing', async () => {
    const res = await t.app.request('/v1/chat/completions', post({ ...hi, model: 'no-such-model' }, auth));
    expect(res.status).toBe(404);
    expect((await json(res)).error).toMatchObject({
      type: 'not_found_error',
      code: 'model_not_found',
      param: 'model',
      message: "The model 'no-such-model' does not exist",
    });
    // Read before opening a Queue of our own on it: no BullMQ key of any queue exists.
    expect((await t.keysInUse()).filter((k) => k.startsWith(`${t.keys.bullPrefix}:`))).toEqual([]);
    expect(await jobsFor(t, 'no-such-model')).toBe(0);
  });

  it('/livez: 200 alive', async () => {
    const res = await t.app.request('/livez');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'alive', shutting_down: false });
  });

  it('/metrics: Prometheus text, counting the requests served', async () => {
    const livezCount = async () => {
      const res = await t.app.request('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const families = parseMetricsText(await res.text());
      return (
        sampleValue(families, 'http_requests_total', { route: '/livez', method: 'GET', status: '200' }) ?? 0
      );
    };
    const before = await livezCount();
    await t.app.request('/livez');
    await t.app.request('/livez');
    expect(await livezCount()).toBe(before + 2);
  });

  describe('X-Request-ID', () => {
    it('a valid inbound id is echoed on success and on errors (header and body)', async () => {
      const ok = await t.app.request('/livez', { headers: { 'X-Request-ID': 'client-req_42=' } });
      expect(ok.headers.get('x-request-id')).toBe('client-req_42=');

      const refused = await t.app.request('/v1/chat/completions', post('{', { 'x-request-id': 'trace-7' }));
      expect(refused.status).toBe(401);
      expect(refused.headers.get('x-request-id')).toBe('trace-7');
      expect((await json(refused)).error).toMatchObject({ request_id: 'trace-7' });
    });

    it('without one (or with an unusable one), each response gets a fresh UUID', async () => {
      const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
      const a = (await t.app.request('/livez')).headers.get('x-request-id');
      const b = (await t.app.request('/livez', { headers: { 'x-request-id': 'no spaces' } })).headers.get(
        'x-request-id',
      );
      expect(a).toMatch(uuid);
      expect(b).toMatch(uuid);
      expect(a).not.toBe(b);
    });
  });
});

describe('createApp: an admitted request enqueues its job (the control of "enqueues nothing")', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A declared model with no worker yet: queued, as for a pool scaled to zero.
    t = await buildTestApp({ MODELS: 'sleeping-model', SCALE_TO_ZERO: '1' });
  });
  afterAll(() => t?.close());

  it('one job in the model’s queue while the client waits; none once it leaves', async () => {
    const { headers } = await t.keyOf();
    const res = await t.app.request('/chat', post({ ...hi, model: 'sleeping-model' }, headers));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await jobsFor(t, 'sleeping-model')).toBe(1);
    await res.body?.cancel();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await t.deps.dispatcher.waiting('sleeping-model')) > 0)
      await new Promise((r) => setTimeout(r, 20));
    expect(await t.deps.dispatcher.waiting('sleeping-model')).toBe(0);
    expect(t.logs.find('job_abandoned')).toMatchObject([{ reason: 'client_disconnected' }]);
  });
});

describe('createApp: while shutting down', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  it('/chat and /v1 answer 503 shutting_down and close the connection; /livez still answers', async () => {
    const { headers } = await t.keyOf();
    t.startShutdown();
    const chat = await t.app.request('/chat', post(hi, headers));
    expect(chat.status).toBe(503);
    expect(chat.headers.get('retry-after')).toBe('1');
    expect(chat.headers.get('connection')).toBe('close');
    expect(await json(chat)).toMatchObject({ error: 'shutting_down' });
    const v1 = await t.app.request('/v1/models', { headers });
    expect(v1.status).toBe(503);
    expect((await json(v1)).error).toMatchObject({ code: 'shutting_down', type: 'server_error' });
    expect(await (await t.app.request('/livez')).json()).toEqual({ status: 'alive', shutting_down: true });
    expect(await t.keysInUse()).not.toContainEqual(expect.stringContaining(':q:'));
  });
});
