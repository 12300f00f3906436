import { createHash, randomUUID } from 'node:crypto';
import { freePort, postSSE, type SpawnedService, spawnService } from '@llmgw/devkit';
import { utcDay } from '@llmgw/redis';
import OpenAI from 'openai';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

const hi = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
// The write-up's checklist sends `curl -d` bodies: no JSON content type.
const curlStyle = {
  rawBody: JSON.stringify(hi),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
};

describe('the seed checklist: 11 rapid requests from one free-tier user', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  async function eleven(send: () => ReturnType<Stack['chat']>) {
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await send());
    return results;
  }

  function expectTenThen429(results: Awaited<ReturnType<Stack['chat']>>[]) {
    expect(results.slice(0, 10).map((r) => r.status)).toEqual(Array(10).fill(200));
    results.slice(0, 10).forEach((r, i) => {
      expect(r.headers['x-ratelimit-limit']).toBe('10');
      expect(r.headers['x-ratelimit-remaining']).toBe(String(9 - i));
    });
    const last = results[10]!;
    expect(last.status).toBe(429);
    const retryAfter = Number(last.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(last.headers['x-ratelimit-remaining']).toBe('0');
    expect(JSON.parse(last.body)).toMatchObject({ error: 'rate_limit_exceeded', limit: 10, window: '1m' });
  }

  it('api_key mode (a free key)', async () => {
    stack = await startStack({ tier: 'free', sim: { ttftMs: 1, itlMs: 1 } });
    expectTenThen429(await eleven(() => stack!.chat(null, curlStyle)));
  });

  it('trusted_headers mode (X-User-ID)', async () => {
    stack = await startStack({ api: { AUTH_MODE: 'trusted_headers' }, sim: { ttftMs: 1, itlMs: 1 } });
    const headers = { ...curlStyle.headers, 'x-user-id': 'test-user' };
    expectTenThen429(await eleven(() => postSSE(`${stack!.apiUrl}/chat`, null, { ...curlStyle, headers })));
  });
});

describe('authentication', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('missing, unknown and revoked keys get 401 in the one error body; X-User-Tier claims nothing', async () => {
    stack = await startStack({ tier: 'free', api: { ADMIN_TOKEN: 'admin-token-0123456789' } });
    const url = `${stack.apiUrl}/chat`;
    const missing = await postSSE(url, hi);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'unauthorized' });
    const unknown = await postSSE(url, hi, { headers: { authorization: 'Bearer llmgw_nope' } });
    expect(unknown.status).toBe(401);
    const viaHeader = await postSSE(url, hi, { headers: { 'x-api-key': stack.apiKey } });
    expect(viaHeader.status).toBe(200);

    // A free key that claims enterprise is still free.
    const claimed = await stack.chat(hi, {
      headers: { 'x-user-tier': 'enterprise', 'x-user-id': 'someone-else' },
    });
    expect(claimed.headers['x-ratelimit-limit']).toBe('10');
    const log = stack.logs.find('job_started').at(-1);
    expect(log?.request_id).toBe(claimed.headers['x-request-id']);
  });

  it('a key revoked on one replica is refused by the other within a second', async () => {
    const other = await stack.startApi();
    const headers = stack.authHeaders;
    const before = await postSSE(`${other.url}/chat`, hi, { headers });
    expect(before.status).toBe(200);
    const id = (await (
      await stack.fetch('/admin/keys', { headers: { authorization: 'Bearer admin-token-0123456789' } })
    ).json()) as {
      data: { id: string; user_id: string }[];
    };
    const mine = id.data.find((k) => k.user_id === 'test-user')!;
    const revoked = await fetch(`${stack.apiUrl}/admin/keys/${mine.id}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer admin-token-0123456789' },
    });
    expect(revoked.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await postSSE(`${other.url}/chat`, hi, { headers });
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body).message).toContain('revoked');
  });

  it('admin API: 401 without the token; create and list show in Redis', async () => {
    const noToken = await fetch(`${stack.apiUrl}/admin/keys`);
    expect(noToken.status).toBe(401);
    const wrong = await fetch(`${stack.apiUrl}/admin/keys`, {
      headers: { authorization: 'Bearer admin-token-0123456780' },
    });
    expect(wrong.status).toBe(401);
    const created = await fetch(`${stack.apiUrl}/admin/keys`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-token-0123456789' },
      body: JSON.stringify({ user: 'carol', tier: 'pro' }),
    });
    expect(created.status).toBe(201);
    const k = (await created.json()) as { key: string; id: string; tier: string };
    expect(k.key).toMatch(/^llmgw_/);
    // Stored under the SHA-256 of the key, computed here independently of the api's own code.
    const hash = createHash('sha256').update(k.key).digest('hex');
    const stored = await stack.redis.hgetall(stack.keys.apiKey(hash));
    expect(stored).toMatchObject({ user_id: 'carol', tier: 'pro', revoked: '0' });
    expect(JSON.stringify(stored)).not.toContain(k.key);
    // Revoked by the key itself: the answer and the log name its id, never the key.
    const revoked = await fetch(`${stack.apiUrl}/admin/keys/${k.key}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer admin-token-0123456789' },
    });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toEqual({ id: k.id, revoked: true });
    expect(await stack.redis.hget(stack.keys.apiKey(hash), 'revoked')).toBe('1');
    expect(stack.logs.find('api_key_revoked').at(-1)).toMatchObject({ key_id: k.id, user_id: 'carol' });
    const unknown = await fetch(`${stack.apiUrl}/admin/keys/llmgw_not-a-key-of-anyone`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer admin-token-0123456789' },
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).not.toContain('llmgw_not-a-key-of-anyone');
    expect(JSON.stringify(stack.logs.find('api_key_revoked'))).not.toContain(k.key);
    const badTier = await fetch(`${stack.apiUrl}/admin/keys`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-token-0123456789' },
      body: JSON.stringify({ user: 'dave', tier: 'platinum' }),
    });
    expect(badTier.status).toBe(400);
  });
});

describe('exact limits across replicas', () => {
  let stack: Stack | undefined;
  const procs: SpawnedService[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await stack?.close();
  });

  it('a limit of 10 admits exactly 10 over 2 api processes, and the window slides', async () => {
    stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 }, workers: [{ WORKER_CONCURRENCY: '16' }] });
    const env = {
      REDIS_URL: stack.redisUrl,
      KEY_PREFIX: stack.prefix,
      AUTH_MODE: 'trusted_headers',
      RATE_LIMIT_WINDOW_MS: '3000',
      QUEUE_MAX_WAITING: '100',
      // The default free tier's rate, without its per-user concurrency caps (fair-share.test.ts):
      // a burst of 10 would meet those first.
      TIERS_JSON: JSON.stringify({ free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 } }),
    };
    const ports = [await freePort(), await freePort()];
    for (const port of ports)
      procs.push(spawnService('api', { ...env, PORT: String(port) }, { name: `api${port}` }));
    await Promise.all(procs.map((p) => p.waitFor((l) => l.msg === 'api_listening')));
    const user = `u-${randomUUID()}`;
    const send = (i: number) =>
      postSSE(`http://127.0.0.1:${ports[i % 2]}/chat`, hi, { headers: { 'x-user-id': user } });

    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => send(i)));
    const ok = burst.filter((r) => r.status === 200);
    expect(ok).toHaveLength(10);
    expect(burst.filter((r) => r.status === 429)).toHaveLength(20);
    for (const r of ok) expect(seedTokens(r.data)).toHaveLength(2);
    // Both replicas admitted some (the split does not matter, the total does).
    expect(new Set(ok.map((r) => r.headers['x-request-id'])).size).toBe(10);

    const wait = Math.max(
      ...burst.filter((r) => r.status === 429).map((r) => Number(r.headers['retry-after'])),
    );
    expect(wait).toBeLessThanOrEqual(3);
    await new Promise((r) => setTimeout(r, wait * 1000 + 100));
    const later = await Promise.all(Array.from({ length: 12 }, (_, i) => send(i)));
    expect(later.filter((r) => r.status === 200)).toHaveLength(10);
  });
});

describe('daily token quota', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());
  const tiers = JSON.stringify({
    free: { requests_per_min: 100, tokens_per_day: 400, priority: 3 },
  });

  it('reserves prompt + max_tokens, settles to real usage on completion and on cancellation', async () => {
    stack = await startStack({ tier: 'free', api: { TIERS_JSON: tiers }, sim: { ttftMs: 5, itlMs: 30 } });
    const key = stack.keys.quota('test-user', utcDay());
    let during = 0;
    const done = await stack.chat(
      { messages: [{ role: 'user', content: 'count my tokens' }], max_tokens: 20, stream: true },
      {
        onData: () => {
          if (during === 0) stack!.redis.get(key).then((v) => (during = Number(v)));
          return undefined;
        },
      },
    );
    expect(seedTokens(done.data)).toHaveLength(20);
    const plain = await stack.fetch('/chat', {
      method: 'POST',
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'count my tokens' }],
        max_tokens: 20,
        stream: false,
      }),
    });
    const usage = ((await plain.json()) as { usage: { total_tokens: number; prompt_tokens: number } }).usage;
    // While generating: the reservation (estimate + 20) stood; afterwards only real usage remains.
    expect(during).toBeGreaterThanOrEqual(20 + usage.prompt_tokens);
    await expect
      .poll(async () => Number(await stack!.redis.get(key)), { timeout: 5000 })
      .toBe(2 * usage.total_tokens);

    const afterTwo = Number(await stack.redis.get(key));
    let frames = 0;
    await stack.chat(
      { messages: [{ role: 'user', content: 'long answer' }], max_tokens: 200 },
      { onData: () => ++frames === 3 },
    );
    // Cancelled early: only the prompt and the few tokens generated are charged, not 200.
    await expect.poll(async () => stack!.sim!.stats().aborted, { timeout: 5000 }).toBe(1);
    await expect
      .poll(async () => Number(await stack!.redis.get(key)) - afterTwo, { timeout: 5000 })
      .toBeLessThan(60);
    expect(Number(await stack.redis.get(key)) - afterTwo).toBeGreaterThan(0);
  });

  it('exhausted: 429 quota_exceeded, Retry-After to midnight UTC, x-should-retry false; the SDK does not retry', async () => {
    stack = await startStack({ tier: 'free', api: { TIERS_JSON: tiers }, sim: { ttftMs: 1, itlMs: 1 } });
    const res = await stack.chat({ messages: [{ role: 'user', content: 'too much' }], max_tokens: 1000 });
    expect(res.status).toBe(429);
    expect(res.headers['x-should-retry']).toBe('false');
    const now = new Date();
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    expect(Math.abs(Number(res.headers['retry-after']) - (midnight - Date.now()) / 1000)).toBeLessThan(5);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'quota_exceeded', limit: 400 });

    const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 2 });
    const before = stack.logs.find('request_rejected').length;
    const err = await client.chat.completions
      .create({ model: 'sim-llama-3-8b', messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota');
    expect(stack.logs.find('request_rejected').length - before).toBe(1);
    // Nothing was reserved by the refused requests.
    expect(await stack.redis.get(stack.keys.quota('test-user', utcDay()))).toBeNull();
  });

  it('malformed requests count against their sender (limit before validation)', async () => {
    stack = await startStack({ tier: 'free', sim: { ttftMs: 1, itlMs: 1 } });
    for (let i = 0; i < 10; i++) {
      const r = await stack.fetch('/chat', { method: 'POST', body: '{"messages": [' });
      expect(r.status).toBe(400);
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(9 - i));
    }
    expect((await stack.chat(hi)).status).toBe(429);
  });
});
