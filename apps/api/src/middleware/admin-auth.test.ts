import { randomUUID } from 'node:crypto';
import { LogCapture } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createKeys, createRedis, quitQuietly } from '@llmgw/redis';
import { Hono } from 'hono';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LoginThrottle } from '../admin/login-throttle.ts';
import type { AppEnv } from '../context.ts';
import { onErrorHandler } from '../errors/index.ts';
import { type TestRedis, testRedis } from '../testing/app-deps.ts';
import { adminAuth, tokenMatches } from './admin-auth.ts';

const TOKEN = 'admin-token-0123456789';

let r: TestRedis;
beforeAll(async () => {
  r = await testRedis();
});
afterAll(() => r?.close());

/**
 * An /admin route behind the middleware, with a throttle of its own (a key prefix under the
 * test's, so the cases do not throttle each other). `app.request()` has no socket: every request
 * comes from the address `unknown`.
 */
function adminApp(redis: Redis = r.redis) {
  const keys = createKeys(`${r.prefix}:${randomUUID()}`);
  const logs = new LogCapture();
  const log = createLogger({ service: 'api', instance: 'test', level: 'debug', destination: logs });
  const app = new Hono<AppEnv>();
  const reached = { count: 0 };
  app.use(async (c, next) => {
    c.set('requestId', 'req-admin');
    c.set('log', log);
    await next();
  });
  app.use('/admin/*', adminAuth({ token: TOKEN, throttle: new LoginThrottle(redis, keys) }));
  app.get('/admin/stats', (c) => {
    reached.count++;
    return c.json({ ok: true });
  });
  app.onError(onErrorHandler);
  const failures = async () => r.redis.get(keys.adminLoginFailures('unknown'));
  return { app, reached, logs, failures };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('adminAuth', () => {
  it.each([
    ['Bearer', `Bearer ${TOKEN}`],
    ['a lower-case scheme', `bearer ${TOKEN}`],
    ['a trailing blank', `Bearer ${TOKEN}  `],
  ])('Authorization: Bearer <ADMIN_TOKEN> passes (%s)', async (_l, authorization) => {
    const { app, reached } = adminApp();
    const res = await app.request('/admin/stats', { headers: { authorization } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(reached.count).toBe(1);
  });

  it.each([
    ['no header', {}, null],
    ['a wrong token of the same length', bearer(`${TOKEN.slice(0, -1)}X`), '1'],
    ['a prefix of the token', bearer(TOKEN.slice(0, 8)), '1'],
    ['the token plus more', bearer(`${TOKEN}extra`), '1'],
    ['a second word', { authorization: `Bearer ${TOKEN} extra` }, '1'],
    ['another scheme', { authorization: `Basic ${TOKEN}` }, '1'],
    ['the token as x-api-key', { 'x-api-key': TOKEN }, null],
  ])('%s: 401, and the handler is not run', async (_l, headers, counted) => {
    const { app, reached, failures } = adminApp();
    const res = await app.request('/admin/stats', { headers });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: 'unauthorized',
      message: 'admin token required: Authorization: Bearer <ADMIN_TOKEN>',
    });
    expect(reached.count).toBe(0);
    // Presenting an Authorization header that is not the token is a guess; sending none is not.
    expect(await failures()).toBe(counted);
  });

  it('after 5 wrong tokens the address gets 429 with Retry-After, the right token too; the handler is not run', async () => {
    const { app, reached, logs, failures } = adminApp();
    for (let i = 0; i < 5; i++) {
      expect((await app.request('/admin/stats', { headers: bearer(`guess-${i}`) })).status).toBe(401);
    }
    expect(await failures()).toBe('5');
    for (const token of ['guess-5', TOKEN]) {
      const res = await app.request('/admin/stats', { headers: bearer(token) });
      expect(res.status).toBe(429);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await res.json()).toEqual({
        error: 'rate_limit_exceeded',
        message: `Too many failed attempts; try again in ${retryAfter} s.`,
        request_id: 'req-admin',
      });
    }
    expect(reached.count).toBe(0);
    // Refused attempts are not counted again: the window is not pushed further out.
    expect(await failures()).toBe('5');
    expect(logs.find('admin_auth_failed')).toHaveLength(5);
    expect(logs.find('admin_auth_throttled')).toMatchObject([{ client: 'unknown' }, { client: 'unknown' }]);
    // The token never reaches a log line.
    expect(JSON.stringify(logs.lines)).not.toContain(TOKEN);
    // Without a header nothing is guessed: still the plain 401.
    expect((await app.request('/admin/stats')).status).toBe(401);
  });

  it('the right token, however often, is never counted', async () => {
    const { app, reached, failures } = adminApp();
    for (let i = 0; i < 8; i++)
      expect((await app.request('/admin/stats', { headers: bearer(TOKEN) })).status).toBe(200);
    expect(reached.count).toBe(8);
    expect(await failures()).toBeNull();
  });

  it('Redis unreachable: 503 service_unavailable with Retry-After, never an unthrottled check', async () => {
    const dead = createRedis(inject('redisUrl'), 'command', 'test-admin-auth-dead');
    await quitQuietly(dead);
    const { app, reached } = adminApp(dead);
    for (const token of ['a-guess', TOKEN]) {
      const res = await app.request('/admin/stats', { headers: bearer(token) });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ error: 'service_unavailable' });
    }
    expect(reached.count).toBe(0);
  });
});

describe('tokenMatches', () => {
  it('is true only for the identical string', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(`${TOKEN}`.toUpperCase(), TOKEN)).toBe(false);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN, '')).toBe(false);
  });

  it('compares bytes: strings of equal length but different byte lengths do not match (nor throw)', () => {
    // timingSafeEqual throws on buffers of unequal length; 'é' is two bytes in UTF-8.
    expect(tokenMatches('é', 'ee')).toBe(false);
    expect(tokenMatches('ab', 'é')).toBe(false);
    expect(tokenMatches('é', 'é')).toBe(true);
  });
});
