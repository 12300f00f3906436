import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const TOKEN = 'admin-token-for-tests-0123456789';

describe('ADMIN_TOKEN guesses: 5 failed attempts per minute per client address, at /admin/login or as Bearer, then 429', () => {
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

  /** Through an api behind a proxy (TRUST_PROXY=1), from `client`: each test's own address. */
  const asClient = (client: string, headers: Record<string, string> = {}) => ({
    ...headers,
    'x-forwarded-for': client,
  });
  const bearer = (base: string, token: string, client: string) =>
    fetch(`${base}/admin/queues/stats`, { headers: asClient(client, { authorization: `Bearer ${token}` }) });
  /** The body without what differs from one answer to the next: the request id, the seconds left. */
  const shape = (body: Record<string, unknown>) => ({
    ...body,
    request_id: typeof body.request_id,
    message: String(body.message).replace(/\d+/, 'N'),
  });

  it('wrong Bearer tokens count as failed logins: after 5, the header and the form both get 429, one error body, the right token too', async () => {
    const proxied = await stack.startApi({ TRUST_PROXY: '1' });
    const client = '192.0.2.20';
    for (let i = 0; i < 5; i++) {
      const wrong = await bearer(proxied.url, `${TOKEN.slice(0, -1)}${i}`, client);
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toMatchObject({ error: 'unauthorized' });
    }
    expect(await stack.redis.get(stack.keys.adminLoginFailures(client))).toBe('5');

    const viaHeader = await bearer(proxied.url, TOKEN, client);
    expect(viaHeader.status).toBe(429);
    const retryAfter = Number(viaHeader.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const headerBody = (await viaHeader.json()) as Record<string, unknown>;
    expect(headerBody).toEqual({
      error: 'rate_limit_exceeded',
      message: `Too many failed attempts; try again in ${retryAfter} s.`,
      request_id: viaHeader.headers.get('x-request-id'),
    });

    // The form, from a script: the same answer; from a browser: the form with the same reason.
    const viaForm = await login(proxied.url, TOKEN, asClient(client));
    expect(viaForm.status).toBe(429);
    expect(Number(viaForm.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(viaForm.headers.get('set-cookie')).toBeNull();
    expect(shape((await viaForm.json()) as Record<string, unknown>)).toEqual(shape(headerBody));
    const page = await login(proxied.url, TOKEN, asClient(client, { accept: 'text/html' }));
    expect(page.status).toBe(429);
    expect(await page.text()).toMatch(
      /<p class="error" role="alert">Too many failed attempts; try again in \d+ s\.<\/p>/,
    );

    // Refusals are not failures: the window is not pushed on.
    expect(await stack.redis.get(stack.keys.adminLoginFailures(client))).toBe('5');
    expect(stack.logs.find('admin_auth_failed').filter((l) => l.client === client)).toHaveLength(5);
    expect(stack.logs.find('admin_auth_throttled').filter((l) => l.client === client)).toHaveLength(1);
    // Another address is not held back.
    expect((await bearer(proxied.url, TOKEN, '192.0.2.21')).status).toBe(200);
  });

  it('failures of both kinds add up; a browser already logged in keeps its session; the right token never counts', async () => {
    const proxied = await stack.startApi({ TRUST_PROXY: '1' });
    const client = '192.0.2.30';
    for (let i = 0; i < 10; i++) expect((await bearer(proxied.url, TOKEN, client)).status).toBe(200);
    expect(await stack.redis.get(stack.keys.adminLoginFailures(client))).toBeNull();
    const ok = await login(proxied.url, TOKEN, asClient(client));
    expect(ok.status).toBe(303);
    const session = ok.headers.get('set-cookie')!.split(';')[0]!;

    for (let i = 0; i < 3; i++)
      expect((await login(proxied.url, `wrong-${i}`, asClient(client))).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await bearer(proxied.url, `wrong-${i}`, client)).status).toBe(401);
    expect((await bearer(proxied.url, TOKEN, client)).status).toBe(429);
    expect((await login(proxied.url, TOKEN, asClient(client))).status).toBe(429);

    // The session took the token to get; forging one means guessing an HMAC keyed with it.
    const withSession = await fetch(`${proxied.url}/admin/queues/stats`, {
      headers: asClient(client, { cookie: session }),
    });
    expect(withSession.status).toBe(200);
  });
});
