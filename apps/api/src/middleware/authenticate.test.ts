import { LogCapture } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createRedis, quitQuietly } from '@llmgw/redis';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../auth/api-keys.ts';
import type { Tiers } from '../auth/tiers.ts';
import type { AppEnv } from '../context.ts';
import { onErrorHandler } from '../errors/index.ts';
import { type TestRedis, testRedis } from '../testing/app-deps.ts';
import { type AuthMode, authenticate } from './authenticate.ts';

const TIERS: Tiers = {
  free: { requests_per_min: 10, tokens_per_day: 1000, priority: 3 },
  pro: { requests_per_min: 60, tokens_per_day: 10_000, priority: 2 },
};

/** A route behind the middleware that answers with who it was told is calling. */
function appWith(mode: AuthMode, store: ApiKeyStore, logs = new LogCapture()) {
  const log = createLogger({ service: 'api', instance: 'test', level: 'debug', destination: logs });
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('requestId', 'req-auth');
    c.set('log', log);
    await next();
  });
  app.use('/whoami', authenticate({ mode, store, tiers: TIERS }));
  app.get('/whoami', (c) => c.json({ principal: c.var.principal, userId: c.var.userId }));
  app.onError(onErrorHandler);
  return app;
}

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;

describe('authenticate, api_key mode', () => {
  let r: TestRedis;
  let store: ApiKeyStore;
  let pro: { key: string; id: string };
  beforeAll(async () => {
    r = await testRedis();
    store = new ApiKeyStore(r.redis, r.keys);
    pro = await store.create('alice', 'pro');
  });
  afterAll(() => r?.close());

  it('Authorization: Bearer <key>: the key’s user and tier, and its public id', async () => {
    const logs = new LogCapture();
    const res = await appWith('api_key', store, logs).request('/whoami', {
      headers: { authorization: `Bearer ${pro.key}` },
    });
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({
      principal: { userId: 'alice', tier: 'pro', keyId: pro.id },
      userId: 'alice',
    });
    expect(logs.find('authenticated')).toMatchObject([{ key_id: pro.id }]);
    // The secret never reaches a log line.
    expect(JSON.stringify(logs.lines)).not.toContain(pro.key);
  });

  it('the scheme is case-insensitive and surrounding blanks are ignored', async () => {
    const res = await appWith('api_key', store).request('/whoami', {
      headers: { authorization: `bearer   ${pro.key}  ` },
    });
    expect(res.status).toBe(200);
  });

  it('x-api-key: <key> (Anthropic clients) authenticates the same way', async () => {
    const res = await appWith('api_key', store).request('/whoami', { headers: { 'x-api-key': pro.key } });
    expect(res.status).toBe(200);
    expect(((await body(res)).principal as Record<string, unknown>).userId).toBe('alice');
  });

  it('Bearer wins over x-api-key; a non-Bearer Authorization leaves x-api-key in charge', async () => {
    const app = appWith('api_key', store);
    const both = await app.request('/whoami', {
      headers: { authorization: 'Bearer llmgw_wrong', 'x-api-key': pro.key },
    });
    expect(both.status).toBe(401);
    expect((await body(both)).message).toBe('invalid API key');
    const basic = await app.request('/whoami', {
      headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': pro.key },
    });
    expect(basic.status).toBe(200);
  });

  it.each([
    ['no key', {}, 'missing API key: send Authorization: Bearer <key>'],
    ['an empty Bearer', { authorization: 'Bearer ' }, 'missing API key: send Authorization: Bearer <key>'],
    ['a blank x-api-key', { 'x-api-key': '   ' }, 'missing API key: send Authorization: Bearer <key>'],
    ['an unknown key', { authorization: 'Bearer llmgw_nobody' }, 'invalid API key'],
  ])('%s: 401 unauthorized', async (_label, headers, message) => {
    const res = await appWith('api_key', store).request('/whoami', { headers });
    expect(res.status).toBe(401);
    expect(await body(res)).toEqual({ error: 'unauthorized', message, request_id: 'req-auth' });
  });

  it('a revoked key: 401 that says so', async () => {
    const k = await store.create('bob', 'pro');
    const app = appWith('api_key', store);
    expect((await app.request('/whoami', { headers: { 'x-api-key': k.key } })).status).toBe(200);
    expect(await store.revoke(k.id)).toMatchObject({ id: k.id, userId: 'bob', revoked: true });
    const res = await app.request('/whoami', { headers: { 'x-api-key': k.key } });
    expect(res.status).toBe(401);
    expect((await body(res)).message).toBe('this API key has been revoked');
  });

  it('client headers claim nothing: X-User-ID and X-User-Tier are ignored', async () => {
    const res = await appWith('api_key', store).request('/whoami', {
      headers: { authorization: `Bearer ${pro.key}`, 'x-user-id': 'mallory', 'x-user-tier': 'free' },
    });
    expect(((await body(res)).principal as Record<string, unknown>).userId).toBe('alice');
  });

  it('a key whose tier is no longer in the table is served as free', async () => {
    const k = await store.create('carol', 'retired-tier');
    const res = await appWith('api_key', store).request('/whoami', { headers: { 'x-api-key': k.key } });
    expect(await body(res)).toMatchObject({ principal: { userId: 'carol', tier: 'free' } });
  });

  it('Redis unreachable: 503 service_unavailable with Retry-After, not 401', async () => {
    const dead = createRedis(inject('redisUrl'), 'command', 'test-auth-dead');
    await quitQuietly(dead);
    const res = await appWith('api_key', new ApiKeyStore(dead, r.keys)).request('/whoami', {
      headers: { authorization: `Bearer ${pro.key}` },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect((await body(res)).error).toBe('service_unavailable');
  });
});

describe('authenticate, trusted_headers mode', () => {
  let r: TestRedis;
  let store: ApiKeyStore;
  beforeAll(async () => {
    r = await testRedis();
    store = new ApiKeyStore(r.redis, r.keys);
  });
  afterAll(() => r?.close());

  it('X-User-ID and X-User-Tier decide, no key needed', async () => {
    const res = await appWith('trusted_headers', store).request('/whoami', {
      headers: { 'x-user-id': ' dave ', 'x-user-tier': 'pro' },
    });
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({ principal: { userId: 'dave', tier: 'pro' }, userId: 'dave' });
  });

  it.each([
    ['absent', undefined],
    ['not in the table', 'platinum'],
    ['an Object.prototype name', 'constructor'],
  ])('X-User-Tier %s: free', async (_label, tier) => {
    const headers: Record<string, string> = { 'x-user-id': 'erin' };
    if (tier !== undefined) headers['x-user-tier'] = tier;
    const res = await appWith('trusted_headers', store).request('/whoami', { headers });
    expect(await body(res)).toMatchObject({ principal: { userId: 'erin', tier: 'free' } });
  });

  it.each([
    ['absent', {}],
    ['blank', { 'x-user-id': '  ' }],
    ['absent, an API key sent instead', { authorization: 'Bearer llmgw_whatever' }],
  ])('X-User-ID %s: 401', async (_label, headers) => {
    const res = await appWith('trusted_headers', store).request('/whoami', { headers });
    expect(res.status).toBe(401);
    expect(await body(res)).toMatchObject({ error: 'unauthorized', message: 'X-User-ID header is required' });
  });
});
