import { LogCapture } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createRedis, quitQuietly } from '@llmgw/redis';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Tiers } from '../auth/tiers.ts';
import type { AppEnv } from '../context.ts';
import { onErrorHandler } from '../errors/index.ts';
import { type TestRedis, testRedis } from '../testing/app-deps.ts';
import { type RateLimitOptions, rateLimit } from './rate-limit.ts';

const TIERS: Tiers = {
  free: { requests_per_min: 2, tokens_per_day: 1000, priority: 3 },
  pro: { requests_per_min: 5, tokens_per_day: 1000, priority: 2 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `/limited` behind the limiter; the caller is who `x-user` and `x-tier` say (what authenticate
 * sets in the app); no `x-user`: no principal. Counts the requests that reached the handler.
 */
function appWith(opts: Omit<RateLimitOptions, 'tiers'>) {
  const log = createLogger({
    service: 'api',
    instance: 'test',
    level: 'debug',
    destination: new LogCapture(),
  });
  const reached = { count: 0 };
  const app = new Hono<AppEnv>();
  let n = 0;
  app.use(async (c, next) => {
    c.set('requestId', `req-${n++}`);
    c.set('log', log);
    const userId = c.req.header('x-user');
    if (userId) c.set('principal', { userId, tier: c.req.header('x-tier') ?? 'free' });
    await next();
  });
  app.use('/limited', rateLimit({ ...opts, tiers: TIERS }));
  app.get('/limited', (c) => {
    reached.count++;
    return c.text('ok');
  });
  app.onError(onErrorHandler);
  const send = (user?: string, tier?: string) =>
    app.request('/limited', {
      headers: { ...(user && { 'x-user': user }), ...(tier && { 'x-tier': tier }) },
    });
  return { send, reached };
}

const rateHeaders = (res: Response) => ({
  limit: res.headers.get('x-ratelimit-limit'),
  remaining: res.headers.get('x-ratelimit-remaining'),
  reset: res.headers.get('x-ratelimit-reset'),
});

describe('rateLimit', () => {
  let r: TestRedis;
  beforeEach(async () => {
    r = await testRedis();
  });
  afterEach(() => r?.close());

  it('every admitted response carries X-RateLimit-Limit / -Remaining / -Reset (whole seconds)', async () => {
    const { send, reached } = appWith({ redis: r.redis, keys: r.keys });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await send('u1', 'pro'));
    expect(results.map((res) => res.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.map((res) => rateHeaders(res).limit)).toEqual(['5', '5', '5', '5', '5']);
    expect(results.map((res) => rateHeaders(res).remaining)).toEqual(['4', '3', '2', '1', '0']);
    for (const res of results) {
      const reset = Number(rateHeaders(res).reset);
      expect(Number.isInteger(reset)).toBe(true);
      expect(reset).toBeGreaterThanOrEqual(59);
      expect(reset).toBeLessThanOrEqual(60);
    }
    expect(reached.count).toBe(5);
  });

  it('over the limit: 429 rate_limit_exceeded with Retry-After, and the handler is not run', async () => {
    const rejected: string[] = [];
    const { send, reached } = appWith({ redis: r.redis, keys: r.keys, onReject: (t) => rejected.push(t) });
    await send('u1');
    await send('u1');
    const res = await send('u1');
    expect(res.status).toBe(429);
    expect(rateHeaders(res)).toMatchObject({ limit: '2', remaining: '0' });
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await res.json()).toEqual({
      error: 'rate_limit_exceeded',
      message: 'rate limit of 2 requests per 1m exceeded',
      limit: 2,
      window: '1m',
      request_id: 'req-2',
    });
    expect(reached.count).toBe(2);
    expect(rejected).toEqual(['free']);
  });

  it('a refusal consumes nothing: the window frees up on time however hard the client hammers', async () => {
    const { send } = appWith({ redis: r.redis, keys: r.keys, windowMs: 1000 });
    const admittedAt = Date.now();
    expect((await send('u1')).status).toBe(200);
    expect((await send('u1')).status).toBe(200);
    const refused = [];
    for (let i = 0; i < 6; i++) {
      refused.push((await send('u1')).status);
      await sleep(60);
    }
    expect(refused).toEqual(Array(6).fill(429));
    expect(await r.redis.zcard(r.keys.rateLimit('u1'))).toBe(2);
    // Refusals ran until ~400 ms after the admissions; had they counted, they would still fill it.
    await sleep(Math.max(0, admittedAt + 1100 - Date.now()));
    const again = await send('u1');
    expect(again.status).toBe(200);
    expect(rateHeaders(again).remaining).toBe('1');
  });

  it('a short window says so and asks to retry in at least a second', async () => {
    const { send } = appWith({ redis: r.redis, keys: r.keys, windowMs: 1000 });
    await send('u1');
    await send('u1');
    const res = await send('u1');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({
      message: 'rate limit of 2 requests per 1s exceeded',
      window: '1s',
    });
  });

  it('each user has a window of their own; an unknown tier gets the free limit', async () => {
    const { send } = appWith({ redis: r.redis, keys: r.keys });
    await send('u1');
    await send('u1');
    expect((await send('u1')).status).toBe(429);
    const other = await send('u2', 'no-such-tier');
    expect(other.status).toBe(200);
    expect(rateHeaders(other)).toMatchObject({ limit: '2', remaining: '1' });
  });

  it('no principal: passes untouched, no headers, nothing written', async () => {
    const { send, reached } = appWith({ redis: r.redis, keys: r.keys });
    const res = await send();
    expect(res.status).toBe(200);
    expect(rateHeaders(res)).toEqual({ limit: null, remaining: null, reset: null });
    expect(reached.count).toBe(1);
    expect(await r.keysInUse()).toEqual([]);
  });

  it('Redis unreachable: 503 service_unavailable with Retry-After, the handler not run', async () => {
    const dead = createRedis(inject('redisUrl'), 'command', 'test-rl-dead');
    await quitQuietly(dead);
    const { send, reached } = appWith({ redis: dead, keys: r.keys });
    const res = await send('u1');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: 'service_unavailable' });
    expect(reached.count).toBe(0);
  });
});
