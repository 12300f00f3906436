import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const TOKEN = 'admin-token-for-tests-0123456789';

describe('/admin/login: 5 failed attempts per minute per client address, then 429', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ api: { ADMIN_TOKEN: TOKEN }, sim: { ttftMs: 1, itlMs: 1 } });
  });
  afterAll(() => stack?.close());

  const login = (base: string, token: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/admin/login`, {
      method: 'POST',
      headers,
      body: new URLSearchParams({ token }),
      redirect: 'manual',
    });

  it('successes do not count; the 6th failure is 429 with Retry-After, even with the right token', async () => {
    const base = stack.apiUrl;
    for (let i = 0; i < 3; i++) expect((await login(base, TOKEN)).status).toBe(303);
    for (let i = 0; i < 5; i++) {
      const wrong = await login(base, `wrong-${i}`);
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).toContain('Wrong token.');
    }
    const throttled = await login(base, 'wrong-again');
    expect(throttled.status).toBe(429);
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await throttled.text()).toContain('Too many failed attempts');
    // The right token is refused too: otherwise the throttle would tell a guesser when it hit.
    const right = await login(base, TOKEN);
    expect(right.status).toBe(429);
    expect(right.headers.get('set-cookie')).toBeNull();
    expect(stack.logs.find('admin_login_throttled').length).toBe(2);
    expect(stack.logs.find('admin_login_throttled')[0]?.client).toBe('127.0.0.1');

    // Without TRUST_PROXY, X-Forwarded-For is the client's own word: it changes nothing.
    expect((await login(base, TOKEN, { 'x-forwarded-for': '203.0.113.9' })).status).toBe(429);
    // The counter lives in Redis, under this deployment's prefix: every replica sees it.
    const ttl = await stack.redis.pttl(stack.keys.adminLoginFailures('127.0.0.1'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('TRUST_PROXY=1: the address is the last X-Forwarded-For entry (the one the proxy added)', async () => {
    const proxied = await stack.startApi({ TRUST_PROXY: '1' });
    const from = (client: string, spoofed = '198.51.100.1') => ({
      'x-forwarded-for': `${spoofed}, ${client}`,
    });
    for (let i = 0; i < 5; i++)
      expect((await login(proxied.url, `wrong-${i}`, from('192.0.2.10', `10.0.0.${i}`))).status).toBe(401);
    // The client-written first entries vary; the proxy's last one decides.
    expect((await login(proxied.url, 'wrong', from('192.0.2.10'))).status).toBe(429);
    // Another client behind the same proxy is not held back.
    expect((await login(proxied.url, TOKEN, from('192.0.2.11'))).status).toBe(303);
  });
});
