import { tmpdir } from 'node:os';
import { type QueueStats, SESSION_COOKIE } from '@llmgw/api';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

const TOKEN = 'admin-token-for-tests-0123456789';
const MODEL = 'sim-llama-3-8b';
const hi = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
const long = { messages: [{ role: 'user', content: 'a long answer' }], max_tokens: 400 };

describe('admin API', () => {
  let stack: Stack;
  let queue: Queue;
  const admin = (path: string, init: RequestInit = {}, base = stack.apiUrl) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
    });
  const stats = async (base = stack.apiUrl) => {
    const res = await admin('/admin/queues/stats', {}, base);
    expect(res.status).toBe(200);
    return ((await res.json()) as { data: QueueStats[] }).data;
  };

  beforeAll(async () => {
    // One generation at a time, 20 ms per token: a long request holds the worker, the next waits.
    stack = await startStack({
      api: { ADMIN_TOKEN: TOKEN },
      sim: { ttftMs: 5, itlMs: 20 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
    });
    // An independent view of the same queue, straight from Redis.
    queue = new Queue(stack.keys.queueName(MODEL), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
  });
  afterAll(async () => {
    await queue?.close();
    await stack?.close();
  });

  it('401 without the token or with a wrong one; a browser is sent to the login page', async () => {
    const routes: [string, string][] = [
      ['GET', '/admin/queues/stats'],
      ['POST', `/admin/models/${MODEL}/pause`],
      ['POST', `/admin/models/${MODEL}/resume`],
      ['GET', '/admin/queues'],
      ['GET', '/admin/queues/api/queues'],
      ['PUT', `/admin/queues/api/queues/${stack.keys.queueName(MODEL)}/pause`],
      ['GET', '/admin/keys'],
    ];
    // A wrong token is a failed attempt of its client address (5 a minute, login-throttle.test.ts):
    // each route's comes from an address of its own, through an api behind a proxy.
    const proxied = await stack.startApi({ TRUST_PROXY: '1' });
    for (const [i, [method, path]] of routes.entries()) {
      const none = await fetch(`${stack.apiUrl}${path}`, { method });
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(await none.json()).toMatchObject({ error: 'unauthorized' });
      const wrong = await fetch(`${proxied.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}x`,
          cookie: `${SESSION_COOKIE}=v1.9999999999.forged`,
          'x-forwarded-for': `192.0.2.${i + 1}`,
        },
      });
      expect(wrong.status, `${method} ${path}`).toBe(401);
    }
    expect(await queue.isPaused()).toBe(false);
    const browser = await fetch(`${stack.apiUrl}/admin/queues`, {
      headers: { accept: 'text/html,application/xhtml+xml' },
      redirect: 'manual',
    });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fqueues');
    expect(await browser.text()).not.toContain('bull');
  });

  it('stats: the counts in Redis, the pause flag and the live workers of every model', async () => {
    for (let i = 0; i < 2; i++) expect((await stack.chat(hi)).status).toBe(200);
    // One running (holding the only slot), one waiting behind it; both given up after 4 s.
    const running = stack.chat(long, { timeoutMs: 4000 });
    await expect.poll(async () => (await stats())[0]?.active, { timeout: 3000 }).toBe(1);
    const waiting = stack.chat(long, { timeoutMs: 4000 });
    await expect.poll(async () => (await stats())[0]?.prioritized, { timeout: 3000 }).toBe(1);

    const [s] = await stats();
    const key = (k: string) => `${stack.keys.bullPrefix}:${stack.keys.queueName(MODEL)}:${k}`;
    const [wait, prioritized, active, completed, failed, paused] = await Promise.all([
      stack.redis.llen(key('wait')),
      stack.redis.zcard(key('prioritized')),
      stack.redis.llen(key('active')),
      stack.redis.zcard(key('completed')),
      stack.redis.zcard(key('failed')),
      stack.redis.hexists(key('meta'), 'paused'),
    ]);
    expect(s).toMatchObject({
      model: MODEL,
      queue: stack.keys.queueName(MODEL),
      paused: paused === 1,
      waiting: wait,
      prioritized,
      active,
      completed,
      failed,
      live_workers: 1,
    });
    expect({ wait, prioritized, active, completed, paused }).toEqual({
      wait: 0,
      prioritized: 1,
      active: 1,
      completed: 2,
      paused: 0,
    });
    expect(s?.workers[0]).toMatchObject({ concurrency: 1 });
    await Promise.all([running, waiting]);
    await expect.poll(async () => (await stats())[0]?.active, { timeout: 5000 }).toBe(0);
  });

  it('pause: running jobs finish, new requests get 503 model_paused on every replica; resume: they flow again', async () => {
    const other = await stack.startApi();
    const started = stack.chat({ ...long, max_tokens: 60 });
    await expect.poll(async () => (await stats())[0]?.active, { timeout: 3000 }).toBe(1);

    const paused = await admin(`/admin/models/${MODEL}/pause`, { method: 'POST' });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toEqual({ model: MODEL, paused: true });
    expect(await queue.isPaused()).toBe(true);
    expect((await stats())[0]?.paused).toBe(true);

    const refused = await stack.chat(hi);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('30');
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'model_paused', param: 'model' });
    const openai = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, ...hi }),
    });
    expect(openai.status).toBe(503);
    expect(await openai.json()).toMatchObject({ error: { code: 'model_paused', type: 'server_error' } });
    // The other replica reads the flag from Redis (cached for at most a second).
    await expect.poll(async () => (await postChat(other.url)).status, { timeout: 3000 }).toBe(503);

    // The job that was running when the pause came finished normally.
    expect(seedTokens((await started).data)).toHaveLength(60);

    const resumed = await admin(`/admin/models/${MODEL}/resume`, { method: 'POST' });
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toEqual({ model: MODEL, paused: false });
    expect(await queue.isPaused()).toBe(false);
    expect(seedTokens((await stack.chat(hi)).data)).toHaveLength(2);
    await expect.poll(async () => (await postChat(other.url)).status, { timeout: 3000 }).toBe(200);

    async function postChat(base: string) {
      return fetch(`${base}/chat`, {
        method: 'POST',
        headers: stack.authHeaders,
        body: JSON.stringify({ ...hi, stream: false }),
      });
    }
  });

  it('pause of a model named with a slash (sent as %2F) and of an unknown model', async () => {
    const model = 'acme/tiny-1';
    await stack.startWorker({ WORKER_MODELS: model });
    await expect.poll(async () => (await stats()).map((s) => s.model), { timeout: 3000 }).toContain(model);
    const res = await admin(`/admin/models/${encodeURIComponent(model)}/pause`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ model, paused: true });
    const q = new Queue(stack.keys.queueName(model), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
    expect(await q.isPaused()).toBe(true);
    await q.close();
    expect(await queue.isPaused()).toBe(false);
    const refused = await stack.chat({ ...hi, model });
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'model_paused' });

    const unknown = await admin('/admin/models/no-such-model/pause', { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'model_not_found' });
  });

  it('login: a wrong token gets the form again; the right one a session cookie that is not the token', async () => {
    const form = await fetch(`${stack.apiUrl}/admin/login`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form method="post" action="/admin/login">');

    const login = (token: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
      fetch(`${stack.apiUrl}/admin/login`, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ token, ...extra }),
        redirect: 'manual',
      });
    // A browser's form submit (it accepts text/html): the form again, with the reason.
    const wrong = await login('not-the-token-at-all', {}, { accept: 'text/html,application/xhtml+xml' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const page = await wrong.text();
    expect(page).toContain('<p class="error" role="alert">Wrong token.</p>');
    expect(page).toContain('<form method="post" action="/admin/login">');
    // A script: the error body of every other /admin route.
    const scripted = await login('not-the-token-at-all-either');
    expect(scripted.status).toBe(401);
    expect(await scripted.json()).toMatchObject({ error: 'unauthorized', message: 'Wrong token.' });

    const ok = await login(TOKEN, { next: '/admin/queues/queue/x' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/queues/queue/x');
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=v1\\.\\d+\\.[\\w-]+;`));
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/admin');
    expect(cookie).not.toContain('Secure');
    expect(cookie).not.toContain(TOKEN);
    const session = cookie.split(';')[0]!;
    const withCookie = await fetch(`${stack.apiUrl}/admin/queues/stats`, { headers: { cookie: session } });
    expect(withCookie.status).toBe(200);
    // A change with the cookie from a page of another origin of the same site (another port of
    // the host: SameSite=Strict lets the cookie go) is refused, even as a text/plain "form".
    const forged = (site: string) =>
      fetch(`${stack.apiUrl}/admin/keys`, {
        method: 'POST',
        headers: { cookie: session, 'sec-fetch-site': site, 'content-type': 'text/plain' },
        body: JSON.stringify({ user: 'mallory', tier: 'enterprise' }),
      });
    expect((await forged('same-site')).status).toBe(403);
    expect((await forged('cross-site')).status).toBe(403);
    expect((await forged('same-origin')).status).toBe(201);

    // Behind a TLS-terminating proxy the cookie is Secure; `next` never leaves /admin.
    const viaTls = await login(TOKEN, { next: '//evil.example/admin' });
    expect(viaTls.headers.get('location')).toBe('/admin');
    const proxied = await fetch(`${stack.apiUrl}/admin/login`, {
      method: 'POST',
      headers: { 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({ token: TOKEN }),
      redirect: 'manual',
    });
    expect(proxied.headers.get('set-cookie')).toContain('Secure');

    const logout = await fetch(`${stack.apiUrl}/admin/logout`, {
      headers: { cookie: session },
      redirect: 'manual',
    });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it("Bull Board's page and static files are served whatever the process cwd (as in the image)", async () => {
    const page = await admin('/admin/queues');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    const scripts = [...html.matchAll(/src="(static\/js\/[^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    const cwd = process.cwd();
    try {
      for (const dir of [cwd, tmpdir()]) {
        process.chdir(dir);
        for (const src of scripts) {
          const res = await admin(`/admin/queues/${src}`);
          expect(res.status, `${src} from ${dir}`).toBe(200);
          expect(res.headers.get('content-type')).toContain('javascript');
          await res.arrayBuffer();
        }
      }
    } finally {
      process.chdir(cwd);
    }
    expect((await fetch(`${stack.apiUrl}/admin/queues/${scripts[0]}`)).status).toBe(401);
  });

  it('ADMIN_READONLY=1: reads work, pause and every other mutating request answer 403', async () => {
    const ro = await stack.startApi({ ADMIN_READONLY: '1' });
    expect((await stats(ro.url)).map((s) => s.model)).toContain(MODEL);
    const mutations: [string, string][] = [
      ['POST', `/admin/models/${MODEL}/pause`],
      ['POST', `/admin/models/${MODEL}/resume`],
      ['POST', '/admin/keys'],
      ['PUT', `/admin/queues/api/queues/${stack.keys.queueName(MODEL)}/pause`],
      ['PUT', `/admin/queues/api/queues/${stack.keys.queueName(MODEL)}/clean/completed`],
    ];
    for (const [method, path] of mutations) {
      const res = await admin(path, { method, body: '{"user":"x"}' }, ro.url);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(await queue.isPaused()).toBe(false);
    // The board itself says so to its UI: every queue is read-only.
    const board = await admin('/admin/queues/api/queues', {}, ro.url);
    expect(board.status).toBe(200);
    const { queues } = (await board.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
    expect(queues.length).toBeGreaterThan(0);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
  });
});

describe('admin surface without ADMIN_TOKEN', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('everything under /admin is 404, and the start log says the admin surface is off', async () => {
    stack = await startStack({ noSim: true, workers: [] });
    for (const path of ['/admin', '/admin/queues', '/admin/queues/stats', '/admin/login', '/admin/keys']) {
      const res = await fetch(`${stack.apiUrl}${path}`, {
        headers: { authorization: 'Bearer whatever-0123456789' },
      });
      expect(res.status, path).toBe(404);
    }
    const res = await fetch(`${stack.apiUrl}/admin/models/${MODEL}/pause`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(stack.logs.find('admin API and Bull Board disabled: ADMIN_TOKEN is not set')).toHaveLength(1);
  });
});
