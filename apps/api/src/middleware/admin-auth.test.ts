import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../context.ts';
import { onErrorHandler } from '../errors/index.ts';
import { adminAuth, tokenMatches } from './admin-auth.ts';

const TOKEN = 'admin-token-0123456789';

function adminApp() {
  const app = new Hono<AppEnv>();
  const reached = { count: 0 };
  app.use('/admin/*', adminAuth({ token: TOKEN }));
  app.get('/admin/stats', (c) => {
    reached.count++;
    return c.json({ ok: true });
  });
  app.onError(onErrorHandler);
  return { app, reached };
}

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
    ['no header', {}],
    ['a wrong token of the same length', { authorization: `Bearer ${TOKEN.slice(0, -1)}X` }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, 8)}` }],
    ['the token plus more', { authorization: `Bearer ${TOKEN}extra` }],
    ['a second word', { authorization: `Bearer ${TOKEN} extra` }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ['the token as x-api-key', { 'x-api-key': TOKEN }],
  ])('%s: 401, and the handler is not run', async (_l, headers) => {
    const { app, reached } = adminApp();
    const res = await app.request('/admin/stats', { headers });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: 'unauthorized',
      message: 'admin token required: Authorization: Bearer <ADMIN_TOKEN>',
    });
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
