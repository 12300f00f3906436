import { Writable } from 'node:stream';
import type { HttpBindings } from '@hono/node-server';
import { LogCapture, parseMetricsText, sampleValue } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { CLIP_CHARS } from '../clip.ts';
import type { AppEnv } from '../context.ts';
import { ApiError, onErrorHandler } from '../errors/index.ts';
import { createApiMetrics } from '../metrics.ts';
import { requestContext } from './request-context.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function contextApp() {
  const logs = new LogCapture();
  const log = createLogger({ service: 'api', instance: 'test', level: 'info', destination: logs });
  const metrics = createApiMetrics(
    async () => new Map(),
    () => false,
  );
  const app = new Hono<AppEnv>();
  app.use(requestContext({ log, metrics }));
  app.get('/items/:id', (c) => {
    c.var.log.info({ item: c.req.param('id') }, 'handler_ran');
    c.set('userId', 'alice');
    c.set('model', c.req.query('model') ?? 'm1');
    c.set('tokens', { prompt: 3, completion: 5 });
    return c.json({ requestId: c.var.requestId });
  });
  app.get('/missing', () => {
    throw new ApiError('model_not_found', 'no such model');
  });
  app.onError(onErrorHandler);
  return { app, logs, metrics };
}

const idOf = async (headers: Record<string, string>) => {
  const { app } = contextApp();
  const res = await app.request('/items/1', { headers });
  const seen = ((await res.json()) as { requestId: string }).requestId;
  expect(res.headers.get('x-request-id')).toBe(seen);
  return seen;
};

describe('requestContext: the request id', () => {
  it('none sent: a fresh UUID, the same in the response header and to the handler', async () => {
    const a = await idOf({});
    const b = await idOf({});
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
  });

  it.each([
    ['letters, digits, _ - =', 'Trace_id-42=='],
    ['a UUID', '0b5c1a3e-4f7e-4c55-9c9a-1f2e3d4c5b6a'],
    ['255 characters', 'x'.repeat(255)],
  ])('a valid inbound X-Request-ID is kept (%s)', async (_l, id) => {
    expect(await idOf({ 'X-Request-ID': id })).toBe(id);
    expect(await idOf({ 'x-request-id': id })).toBe(id);
  });

  it.each([
    ['256 characters', 'x'.repeat(256)],
    ['a space', 'two words'],
    ['a slash', 'a/b'],
    ['a dot', 'a.b'],
    ['a semicolon', 'id;evil=1'],
    ['non-ASCII', 'idé'],
  ])('an invalid inbound X-Request-ID is replaced by a fresh UUID (%s)', async (_l, id) => {
    const { app, logs } = contextApp();
    const res = await app.request('/items/1', { headers: { 'X-Request-ID': id } });
    expect(res.headers.get('x-request-id')).toMatch(UUID);
    // The refused value reaches no log line either.
    for (const line of logs.lines) expect(line.request_id).toBe(res.headers.get('x-request-id'));
  });
});

describe('requestContext: log lines and metrics', () => {
  it('request_started, the handler’s lines and request_completed all carry the request id', async () => {
    const { app, logs } = contextApp();
    const res = await app.request('/items/7', { headers: { 'x-request-id': 'req-log-1' } });
    expect(res.status).toBe(200);
    expect(logs.lines.map((l) => l.msg)).toEqual(['request_started', 'handler_ran', 'request_completed']);
    for (const line of logs.lines) expect(line.request_id).toBe('req-log-1');
    expect(logs.find('request_started')[0]).toMatchObject({ method: 'GET', path: '/items/7' });
  });

  it('request_completed: method, route template, status, latency, and what the handler recorded', async () => {
    const { app, logs } = contextApp();
    await app.request('/items/7?model=m2');
    const [line] = logs.find('request_completed');
    expect(line).toMatchObject({
      method: 'GET',
      route: '/items/:id',
      status: 200,
      user_id: 'alice',
      model: 'm2',
      tokens: { prompt: 3, completion: 5 },
    });
    expect(typeof line?.latency_ms).toBe('number');
    expect(line?.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('client input in the line is clipped: a 10 KB model name does not make a 10 KB line', async () => {
    const { app, logs } = contextApp();
    await app.request(`/items/7?model=${'m'.repeat(10_000)}`);
    expect(logs.find('request_completed')[0]?.model).toBe(`${'m'.repeat(CLIP_CHARS)}…`);
  });

  it('an error answered by onError is logged with its status', async () => {
    const { app, logs } = contextApp();
    const res = await app.request('/missing');
    expect(res.status).toBe(404);
    expect(logs.find('request_completed')).toMatchObject([{ route: '/missing', status: 404 }]);
  });

  it('counts each request under its route template, method and status', async () => {
    const { app, metrics } = contextApp();
    await app.request('/items/1');
    await app.request('/items/2');
    await app.request('/missing');
    const families = parseMetricsText(await metrics.registry.metrics());
    const labels = { route: '/items/:id', method: 'GET', status: '200' };
    expect(sampleValue(families, 'http_requests_total', labels)).toBe(2);
    expect(sampleValue(families, 'http_request_duration_seconds_count', labels)).toBe(2);
    expect(
      sampleValue(families, 'http_requests_total', { route: '/missing', method: 'GET', status: '404' }),
    ).toBe(1);
  });

  it('a response still being written is logged once the socket is done with it, not before', async () => {
    const { app, logs, metrics } = contextApp();
    // What @hono/node-server hands the app: the response object the body is written to.
    const outgoing = new Writable({ write: (_chunk, _enc, cb) => cb() });
    const env = { outgoing } as unknown as HttpBindings;
    const res = await app.request('/items/1', {}, env);
    expect(res.status).toBe(200);
    expect(logs.find('request_started')).toHaveLength(1);
    expect(logs.find('request_completed')).toHaveLength(0);
    expect(await metrics.registry.metrics()).not.toMatch(/^http_requests_total\{/m);

    const closed = new Promise((r) => outgoing.once('close', r));
    outgoing.end();
    await closed;
    expect(logs.find('request_completed')).toMatchObject([{ route: '/items/:id', status: 200 }]);
  });
});

describe('requestContext: no API key in a log line', () => {
  it('a key in the path (DELETE /admin/keys/<the key>) is logged as llmgw_[redacted]', async () => {
    const { app, logs } = contextApp();
    await app.request('/items/llmgw_Zm9vYmFyYmF6cXV4LTEyMzQ1Njc4OTBhYmNkZWY');
    const started = logs.find('request_started')[0]!;
    expect(started.path).toBe('/items/llmgw_[redacted]');
    expect(JSON.stringify(logs.find('request_started'))).not.toContain('Zm9vYmFy');
  });
});
