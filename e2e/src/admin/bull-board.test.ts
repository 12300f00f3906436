import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SESSION_COOKIE } from '@llmgw/api';
import { Queue } from 'bullmq';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = '/usr/bin/chromium';
/**
 * Where the board's screenshot goes: TEST_ARTIFACTS_DIR when set (a CI job that keeps it), else
 * the OS temporary directory — never the checkout.
 */
const ARTIFACTS = process.env.TEST_ARTIFACTS_DIR ?? join(tmpdir(), 'llmgw-test-artifacts');
const TOKEN = 'admin-token-for-the-browser-0123';
const MODEL = 'sim-llama-3-8b';
const LATE_MODEL = 'sim-mistral-7b';

const title = existsSync(CHROMIUM)
  ? 'Bull Board in headless Chromium'
  : `Bull Board in headless Chromium — SKIPPED: ${CHROMIUM} is absent (apt-get install chromium)`;

describe.skipIf(!existsSync(CHROMIUM))(title, () => {
  let stack: Stack;
  let queue: Queue;
  let context: BrowserContext;
  let profile: string;
  let streams: Promise<unknown>[] = [];
  const board = () => `${stack.apiUrl}/admin/queues`;

  beforeAll(async () => {
    // One generation at a time and 50 ms per token: a long request holds the worker and the next
    // waits behind it, so the board has a job in each state to show.
    stack = await startStack({
      api: { ADMIN_TOKEN: TOKEN },
      sim: { ttftMs: 5, itlMs: 50 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
    });
    queue = new Queue(stack.keys.queueName(MODEL), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
    profile = mkdtempSync(join(tmpdir(), 'llmgw-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 800 },
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await queue?.close();
    await stack?.close();
    await Promise.all(streams);
    streams = [];
  });

  it('without credentials the board is refused: the login page, no board, its API 401', async () => {
    const page = await context.newPage();
    await page.goto(board());
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe(
      '/admin/login?next=%2Fadmin%2Fqueues',
    );
    await expect.poll(() => page.locator('input#token').count()).toBe(1);
    // Bull Board's page mounts its app on #root; not served here.
    expect(await page.locator('#root').count()).toBe(0);
    expect((await page.request.get(`${board()}/api/queues`)).status()).toBe(401);

    await page.fill('#token', 'a-wrong-token-0123456789');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toBe('Wrong token.');
    expect(await page.locator('#root').count()).toBe(0);
    expect(await context.cookies()).toEqual([]);
    await page.close();
  });

  it('after login it renders every model queue (one registered later too) and a waiting job with its data', async () => {
    const ask = (content: string) =>
      stack.chat({ messages: [{ role: 'user', content }], max_tokens: 1000 }, { timeoutMs: 45_000 });
    streams.push(ask('the running one').catch(() => {}));
    await expect.poll(() => queue.getActiveCount(), { timeout: 5000 }).toBe(1);
    streams.push(ask('the waiting one').catch(() => {}));
    await expect.poll(() => queue.getPrioritizedCount(), { timeout: 5000 }).toBe(1);

    const page = await context.newPage();
    await page.goto(board());
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(board()), page.click('button[type=submit]')]);

    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({
      name: SESSION_COOKIE,
      httpOnly: true,
      sameSite: 'Strict',
      path: '/admin',
    });
    expect(cookie?.value).not.toContain(TOKEN);

    const menu = (model: string) =>
      page.getByRole('link', { name: stack.keys.queueName(model), exact: true });
    await menu(MODEL).waitFor({ timeout: 10_000 });
    await page.getByText(MODEL, { exact: true }).first().waitFor();
    // Each model's batch queue beside it (the Batch API's requests, idle slots only).
    await page.getByRole('link', { name: stack.keys.batchQueueName(MODEL), exact: true }).waitFor();

    // A worker for another model starts after the board was first shown.
    await stack.startWorker({ WORKER_MODELS: LATE_MODEL });
    await expect
      .poll(
        async () => {
          await page.reload();
          await menu(MODEL).waitFor();
          return menu(LATE_MODEL).count();
        },
        { timeout: 10_000, interval: 500 },
      )
      .toBe(1);

    const [waitingId] = await queue.getJobs(['prioritized']).then((jobs) => jobs.map((j) => j.id));
    const job = await queue.getJob(waitingId!);
    await page.goto(`${board()}/queue/${stack.keys.queueName(MODEL)}?status=prioritized`);
    await page.getByText(waitingId!, { exact: true }).waitFor({ timeout: 10_000 });
    // The job's data: its request id and model, as stored in Redis.
    await page.getByText(`"${job!.data.requestId}"`).waitFor();
    const text = await page.locator('body').textContent();
    expect(text).toMatch(/PRIORITIZED\s*1/);
    expect(text).toMatch(/ACTIVE\s*1/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'bull-board.png') });

    // "Log out" in the board's header menu (uiConfig.miscLinks → /admin/logout) ends the session.
    await page.locator('header ul > li').last().locator('button').click();
    await Promise.all([
      page.waitForURL('**/admin/login'),
      page.getByText('Log out', { exact: true }).click(),
    ]);
    expect(await context.cookies()).toEqual([]);
    await page.goto(board());
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.close();
  });
});
