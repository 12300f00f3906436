import { randomUUID } from 'node:crypto';
import { recordUsage } from '@llmgw/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../../testing/app-deps.ts';
import { SESSION_COOKIE, sessionValue } from '../session.ts';
import { csrfTokenFor } from './csrf.ts';

/**
 * The admin page without a browser (the browser's test: e2e/src/admin/admin-page.test.ts): it
 * needs the login, escapes what users typed, refuses forms without the session's CSRF token, and
 * in read-only mode has no forms and takes no POST. Real Redis, the real app.
 */
const ADMIN_TOKEN = 'admin-token-for-page-tests-0123';
const HOSTILE_NAME = '<script>alert("name")</script>';
const HOSTILE_USER = '"><img src=x onerror=alert(1)>';
const HOSTILE_META = '<b onmouseover=alert(2)>team</b>';
const MODEL = 'sim-<i>model</i>';

/** One login's cookie: its CSRF token is derived from the value, so a test keeps the one it began with. */
const session = () => {
  const value = sessionValue(ADMIN_TOKEN);
  return { value, cookie: `${SESSION_COOKIE}=${value}` };
};
const csrfOf = (page: string) => page.match(/name="csrf" value="([\w-]+)"/)?.[1];

describe('admin page', () => {
  let t: TestApp;
  let hostileId: string;

  beforeAll(async () => {
    // A price for the model: the usage table gets its cost column.
    t = await buildTestApp({
      ADMIN_TOKEN,
      PRICES_JSON: JSON.stringify({ [MODEL]: { input: 1, output: 2 } }),
    });
    const k = await t.deps.keyStore.create(HOSTILE_USER, 'pro', {
      name: HOSTILE_NAME,
      metadata: { owner: HOSTILE_META },
    });
    hostileId = k.id;
    await recordUsage(
      t.redis,
      t.keys,
      {
        jobId: randomUUID(),
        userId: HOSTILE_USER,
        keyId: k.id,
        model: MODEL,
        outcome: 'completed',
        usage: { promptTokens: 1234, completionTokens: 567 },
        endedAt: Date.now(),
      },
      30,
    );
  });
  afterAll(() => t?.close());

  it('needs the login: a browser is sent to the form, a script gets 401', async () => {
    const browser = await t.app.request('/admin', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/admin/login?next=%2Fadmin');
    const script = await t.app.request('/admin');
    expect(script.status).toBe(401);
    expect(await script.text()).not.toContain('<html');
    const wrong = await t.app.request('/admin', {
      headers: {
        accept: 'text/html',
        cookie: `${SESSION_COOKIE}=${sessionValue('another-token-0123456789')}`,
      },
    });
    expect(wrong.status).toBe(302);
    const post = await t.app.request('/admin/page/keys', {
      method: 'POST',
      body: new URLSearchParams({ user: 'mallory' }),
    });
    expect(post.status).toBe(401);
    expect((await t.deps.keyStore.list()).map((k) => k.userId)).not.toContain('mallory');
  });

  it('escapes the names, users and metadata users typed, in the keys and in the usage chart', async () => {
    const res = await t.app.request('/admin', { headers: { cookie: session().cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('script-src');
    const page = await res.text();
    for (const hostile of [HOSTILE_NAME, HOSTILE_USER, HOSTILE_META, '<i>model</i>']) {
      expect(page).not.toContain(hostile);
    }
    expect(page).toContain('&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;');
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('&lt;b onmouseover=alert(2)&gt;team&lt;/b&gt;');
    // As text, never as a tag (or an attribute of one): no `<` of theirs is left.
    expect(page).not.toMatch(/<script|<img|<b |<i>/i);
    // Its usage: in the table, and as a bar of the chart labelled with the (escaped) name.
    const usageTable = page.slice(page.indexOf('id="usage-table"'));
    const row = usageTable.slice(usageTable.indexOf(`data-key-id="${hostileId}"`)).split('</tr>')[0]!;
    expect(row).toContain('sim-&lt;i&gt;model&lt;/i&gt;');
    expect(row).toMatch(/>1,234<\/td>[\s\S]*>567<\/td>[\s\S]*>1,801<\/td>/);
    // 1,234 × $1 + 567 × $2 per million tokens.
    expect(row).toContain('>$0.0024</td>');
    expect(page).toContain('<th>Cost (USD)</th>');
    expect(page).toMatch(/<svg[^>]*aria-label="Tokens per key and model"[\s\S]*1,801<\/text>/);
    expect(page).toContain(`<a href="/admin/queues">`);
  });

  it('refuses a form without the session’s CSRF token, and creates the key with it (secret once)', async () => {
    const login = session();
    const page = await (await t.app.request('/admin', { headers: { cookie: login.cookie } })).text();
    const csrf = csrfOf(page)!;
    expect(csrf).toMatch(/^[\w-]{43}$/);
    const post = (body: Record<string, string>, cookie = login.cookie) =>
      t.app.request('/admin/page/keys', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
    const users = async () => (await t.deps.keyStore.list()).map((k) => k.userId);

    expect((await post({ user: 'no-token' })).status).toBe(403);
    expect((await post({ user: 'wrong-token', csrf: `${csrf.slice(0, -1)}x` })).status).toBe(403);
    // Another session's token (the token of a login at another second) is not this one's.
    const other = `${SESSION_COOKIE}=${sessionValue(ADMIN_TOKEN, Date.now() + 5000)}`;
    expect((await post({ user: 'other-session', csrf }, other)).status).toBe(403);
    // Bearer passes the guard, but has no session, so no token: the page's forms are not its API.
    const bearer = await t.app.request('/admin/page/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: new URLSearchParams({ user: 'bearer', csrf }),
    });
    expect(bearer.status).toBe(403);
    for (const u of ['no-token', 'wrong-token', 'other-session', 'bearer'])
      expect(await users()).not.toContain(u);

    const bad = await post({ user: 'carol', tier: 'pro', tokens_per_min: '-5', name: HOSTILE_NAME, csrf });
    expect(bad.status).toBe(400);
    const badPage = await bad.text();
    expect(badPage).toMatch(/role="alert">tokens_per_min: /);
    expect(badPage).toContain('value="-5"');
    expect(badPage).not.toContain(HOSTILE_NAME);
    expect(await users()).not.toContain('carol');

    const ok = await post({ user: 'carol', tier: 'pro', models: 'a, b', tokens_per_min: '9000', csrf });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const shown = await ok.text();
    const secret = shown.match(/id="secret"[^>]*value="(llmgw_[\w-]+)"/)?.[1];
    expect(secret).toBeDefined();
    expect(shown.split(secret!)).toHaveLength(2);
    const created = (await t.deps.keyStore.list()).find((k) => k.userId === 'carol')!;
    expect(created).toMatchObject({ tier: 'pro', models: ['a', 'b'], limits: { tokens_per_min: 9000 } });
    expect(await t.deps.keyStore.lookup(secret!)).toMatchObject({ id: created.id });
    // Never again: the page lists the key, not its secret; no log line has it.
    const again = await t.app.request('/admin', { headers: { cookie: login.cookie } });
    expect(await again.text()).not.toContain(secret);
    expect(t.logs.lines.some((l) => JSON.stringify(l).includes(secret!))).toBe(false);
  });
});

describe('admin page, ADMIN_READONLY=1', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ ADMIN_TOKEN, ADMIN_READONLY: '1' });
    await t.deps.keyStore.create('dave', 'free', { name: 'daves-key' });
  });
  afterAll(() => t?.close());

  it('shows the keys without a form, and every form POST is 403 even with its token', async () => {
    const login = session();
    const res = await t.app.request('/admin', { headers: { cookie: login.cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('daves-key');
    expect(page).toContain('Read-only (ADMIN_READONLY=1)');
    expect(page).not.toMatch(/method="post"/);
    expect(page).not.toContain('name="csrf"');
    const [key] = await t.deps.keyStore.list();
    // The session's valid token, as a page with forms would carry it.
    const csrf = csrfTokenFor(login.value, ADMIN_TOKEN);
    for (const path of [
      '/admin/page/keys',
      `/admin/page/keys/${key!.id}/rotate`,
      `/admin/page/keys/${key!.id}/revoke`,
    ]) {
      const r = await t.app.request(path, {
        method: 'POST',
        headers: { cookie: login.cookie },
        body: new URLSearchParams({ user: 'eve', csrf }),
      });
      expect(r.status, path).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(await t.deps.keyStore.list()).toEqual([
      expect.objectContaining({ userId: 'dave', revoked: false }),
    ]);
  });
});

describe('admin page: batches', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ ADMIN_TOKEN });
  });
  afterAll(() => t?.close());

  it('lists the batches that are running, with their owner and counts, escaped', async () => {
    const empty = await (await t.app.request('/admin', { headers: { cookie: session().cookie } })).text();
    expect(empty).toContain('Batches running (0)');
    const id = `batch_${randomUUID().replaceAll('-', '')}`;
    const now = Date.UTC(2026, 11, 3, 12, 0, 0);
    await t.redis.hset(t.keys.batch(id), {
      user: HOSTILE_USER,
      status: 'in_progress',
      endpoint: '/v1/chat/completions',
      input_file_id: 'file-x',
      created_at: String(now),
      expires_at: String(now + 86_400_000),
      total: '200',
      completed: '37',
      failed: '2',
    });
    await t.redis.zadd(t.keys.openBatches, now + 86_400_000, id);
    const page = await (await t.app.request('/admin', { headers: { cookie: session().cookie } })).text();
    const section = page.slice(page.indexOf('id="batches"'));
    expect(section).toContain('Batches running (1)');
    expect(section).toContain(`<code>${id}</code>`);
    expect(section).toMatch(
      /<td>in_progress<\/td><td>\/v1\/chat\/completions<\/td><td>37 \/ 200<\/td><td>2<\/td>/,
    );
    expect(section).not.toContain(HOSTILE_USER);
    expect(section).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
  });
});
