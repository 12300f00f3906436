import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = '/usr/bin/chromium';
/** TEST_ARTIFACTS_DIR when set (a CI job that keeps it), else the OS temporary directory — never the checkout. */
const ARTIFACTS = process.env.TEST_ARTIFACTS_DIR ?? join(tmpdir(), 'llmgw-test-artifacts');
const TOKEN = 'admin-token-for-the-page-test-0123';
const MODEL = 'sim-llama-3-8b';
/** Markup in what an operator types: it must come back as text. `<a>` would make a link. */
const NAME = 'Team <a href="/x">A</a> & "B"';
const OWNER = '<ops>';

const title = existsSync(CHROMIUM)
  ? 'the admin page in headless Chromium'
  : `the admin page in headless Chromium — SKIPPED: ${CHROMIUM} is absent (apt-get install chromium)`;

/**
 * The admin page (issue 24 §6) as an operator uses it, in a real browser against the whole stack
 * (simulator, worker, api): log in, create a key, use it, watch its usage appear, rotate it, revoke
 * it; the gateway's own answers (200, 401) say each step took effect, and the page says so too.
 */
describe.skipIf(!existsSync(CHROMIUM))(title, () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** The key the test creates: its id, and each of its secrets in turn. */
  let keyId: string;
  let secret: string;
  let rotated: string;
  const admin = () => `${stack.apiUrl}/admin`;
  const keyRow = () => page.locator(`#keys-table tr[data-key-id="${keyId}"]`);
  const usageRow = () => page.locator(`#usage-table tr[data-key-id="${keyId}"][data-model="${MODEL}"]`);
  const cells = async (row: ReturnType<Page['locator']>) =>
    (await row.locator('td').allTextContents()).map((t) => t.trim());
  const modelsWith = (key: string) =>
    fetch(`${stack.apiUrl}/v1/models`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    stack = await startStack({ api: { ADMIN_TOKEN: TOKEN }, sim: { ttftMs: 5, itlMs: 5 } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stack?.close();
  });

  it('is behind the login form, then shows the keys, no usage yet, and links to Bull Board', async () => {
    await page.goto(admin());
    const at = new URL(page.url());
    expect(at.pathname + at.search).toBe('/admin/login?next=%2Fadmin');
    expect(await page.locator('#keys-table').count()).toBe(0);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(admin()), page.click('button[type=submit]')]);

    await page.getByRole('heading', { name: 'llm-gateway admin' }).waitFor();
    expect(await page.getByRole('link', { name: 'Bull Board (queues)' }).getAttribute('href')).toBe(
      '/admin/queues',
    );
    // The stack's own key (test-user), made before the page was opened.
    expect(await page.locator('#keys-table tbody tr').allTextContents()).toEqual([
      expect.stringContaining('test-user'),
    ]);
    expect(await page.locator('#usage-empty').textContent()).toBe('No usage in this range.');
  });

  it('creates a key from the form and shows its secret once, not in the URL', async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 16);
    await page.fill('#user', 'page-user');
    await page.selectOption('#tier', 'enterprise');
    await page.fill('#name', NAME);
    await page.fill('#expires_at', tomorrow);
    await page.fill('#models', MODEL);
    await page.fill('#tokens_per_min', '50000');
    await page.fill('#monthly_budget', '1000000');
    await page.fill('#metadata', `owner=${OWNER}`);
    await Promise.all([
      page.waitForURL('**/admin/page/keys'),
      page.getByRole('button', { name: 'Create key' }).click(),
    ]);

    const heading = await page.getByRole('heading', { name: /^Key created: / }).textContent();
    keyId = heading!.replace('Key created: ', '');
    expect(keyId).toMatch(/^key_[0-9a-f]{12}$/);
    secret = await page.locator('#secret').inputValue();
    expect(secret).toMatch(/^llmgw_[\w-]{32}$/);
    expect(page.url()).not.toContain(secret);
    expect(await page.getByRole('status').textContent()).toContain('shown this once');

    await page.getByRole('link', { name: 'Back to keys and usage' }).click();
    await page.waitForURL(admin());
    expect(await page.content()).not.toContain(secret);
    const [key, user, tier, , expires, models, limits, budget, metadata, lastUsed, status, actions] =
      await cells(keyRow());
    expect(key).toBe(`${keyId}${NAME}`);
    expect({ user, tier, models, limits, budget, metadata, lastUsed, status }).toEqual({
      user: 'page-user',
      tier: 'enterprise',
      models: MODEL,
      limits: 'tokens_per_min 50,000',
      budget: '1,000,000',
      metadata: `owner=${OWNER}`,
      lastUsed: 'never',
      status: 'active',
    });
    expect(expires).toBe(`${tomorrow.replace('T', ' ')} UTC`);
    expect(actions).toContain('Revoke');
    // Text, not markup: no link was made from the name, nor an element from the metadata.
    expect(await keyRow().locator('a').count()).toBe(0);
    expect(await page.locator('ops').count()).toBe(0);
  });

  it('shows the usage of a chat made with the key, as the backend counted it', async () => {
    const res = await fetch(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: 'count me on the admin page' }],
        max_tokens: 12,
        stream: false,
      }),
    });
    expect(res.status).toBe(200);
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    expect(usage.completion_tokens).toBeGreaterThan(0);

    // The worker adds the job to the ledger as it ends; the page reads the ledger on each load.
    await expect
      .poll(
        async () => {
          await page.reload();
          return usageRow().count();
        },
        { timeout: 15_000, interval: 300 },
      )
      .toBe(1);
    const [key, user, model, requests, prompt, completion, total] = await cells(usageRow());
    expect(key).toBe(`${keyId} ${NAME}`);
    expect({ user, model, requests }).toEqual({ user: 'page-user', model: MODEL, requests: '1' });
    const n = (s: string | undefined) => Number(s?.replaceAll(',', ''));
    expect([n(prompt), n(completion), n(total)]).toEqual([
      usage.prompt_tokens,
      usage.completion_tokens,
      usage.prompt_tokens + usage.completion_tokens,
    ]);
    // Its bar in the chart, labelled with the key and model, both parts drawn.
    const bar = page.locator('svg.chart g.bar', {
      has: page.locator('title', { hasText: `${keyId} (${NAME}) · ${MODEL}: ` }),
    });
    expect(await bar.count()).toBe(1);
    expect(await bar.locator('text').last().textContent()).toBe(
      (usage.prompt_tokens + usage.completion_tokens).toLocaleString('en-US'),
    );
    const widths = await bar
      .locator('rect')
      .evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('width'))));
    expect(widths.every((w) => w > 0)).toBe(true);
    // Last used: the key's own record, written as the chat was authenticated.
    expect((await cells(keyRow()))[9]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-page.png'), fullPage: true });
  });

  it('refuses a form post without the page’s CSRF token, though the browser sends the session', async () => {
    const forged = await page.request.post(`${stack.apiUrl}/admin/page/keys`, {
      form: { user: 'forged', tier: 'enterprise' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    await page.reload();
    expect(await page.locator('#keys-table').textContent()).not.toContain('forged');
  });

  it('rotates the key with no grace: a new secret shown once, the old one 401 at once', async () => {
    await keyRow().locator('input[name=grace_seconds]').fill('0');
    await Promise.all([
      page.waitForURL(`**/admin/page/keys/${keyId}/rotate`),
      keyRow().getByRole('button', { name: 'Rotate' }).click(),
    ]);
    expect(await page.getByRole('heading', { name: /^Key rotated: / }).textContent()).toBe(
      `Key rotated: ${keyId}`,
    );
    rotated = await page.locator('#secret').inputValue();
    expect(rotated).toMatch(/^llmgw_[\w-]{32}$/);
    expect(rotated).not.toBe(secret);
    expect(await page.locator('body').textContent()).toContain('The former secret keeps working until');

    const old = await modelsWith(secret);
    expect(old.status).toBe(401);
    expect(await old.json()).toMatchObject({ error: { code: 'key_expired' } });
    expect((await modelsWith(rotated)).status).toBe(200);
  });

  it('revokes the key: the page says so, and the gateway answers its secret 401', async () => {
    await page.goto(admin());
    await Promise.all([
      page.waitForURL(`${admin()}?revoked=${keyId}`),
      keyRow().getByRole('button', { name: 'Revoke' }).click(),
    ]);
    expect(await page.getByRole('status').textContent()).toBe(`Key ${keyId} (user page-user) revoked.`);
    expect((await cells(keyRow()))[10]).toBe('revoked');
    expect(await keyRow().getByRole('button').count()).toBe(0);
    const res = await modelsWith(rotated);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: { code: 'unauthorized', message: 'this API key has been revoked' },
    });
    // Its usage stays: the ledger is history.
    expect(await usageRow().count()).toBe(1);
  });

  it('with ADMIN_READONLY=1 shows the same keys without a form, and its POSTs get 403', async () => {
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const readOnly = await stack.startApi({ ADMIN_READONLY: '1' });
    // The same session: a cookie is per host, not per port, and the replicas share ADMIN_TOKEN.
    await page.goto(`${readOnly.url}/admin`);
    await page.getByRole('heading', { name: 'llm-gateway admin (read-only)' }).waitFor();
    expect(await keyRow().count()).toBe(1);
    expect(await page.locator('form[method=post]').count()).toBe(0);
    expect(await page.locator('#create-key').count()).toBe(0);
    const stackKey = (await page.locator('#keys-table tbody tr').last().getAttribute('data-key-id'))!;
    const post = await page.request.post(`${readOnly.url}/admin/page/keys/${stackKey}/revoke`, {
      form: { csrf },
      maxRedirects: 0,
    });
    expect(post.status()).toBe(403);
    expect((await stack.fetch('/v1/models')).status).toBe(200);
  });
});
