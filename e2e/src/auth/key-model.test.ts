import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const ADMIN = 'admin-token-0123456789abcdef';
const OTHER_MODEL = 'sim-qwen-2.5-7b';
const admin = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface CreatedKey {
  id: string;
  key: string;
  user_id: string;
  expired: boolean;
  last_used_at?: number;
}

/**
 * The key model of issue 24 on a real stack: keys made through the admin API with an expiry, a
 * model allowlist, limits of their own, a monthly budget and metadata, then used as clients
 * use them, on the OpenAI endpoints.
 */
describe('API keys: expiry, model allowlists, own limits, budgets, rotation', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      tier: 'pro',
      api: { ADMIN_TOKEN: ADMIN },
      // Every answer is 2 tokens, whatever max_tokens reserved: settlement gives the rest back.
      sim: { ttftMs: 1, itlMs: 1, outputTokens: 2, models: [DEFAULT_MODEL, OTHER_MODEL] },
      workers: [{ WORKER_MODELS: `${DEFAULT_MODEL},${OTHER_MODEL}` }],
    });
  });
  afterAll(() => stack?.close());

  // Each test's keys belong to a user of its own: the users' request rates never meet.
  let user = '';
  beforeEach((ctx) => {
    user = `user-${ctx.task.id}`;
  });
  const createKey = async (body: Record<string, unknown>): Promise<CreatedKey> => {
    const res = await fetch(`${stack.apiUrl}/admin/keys`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ user, tier: 'pro', ...body }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as CreatedKey;
  };
  const chat = (key: string, body: Record<string, unknown> = {}) =>
    fetch(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: DEFAULT_MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
        ...body,
      }),
    });
  const errorOf = async (res: Response) =>
    ((await res.json()) as { error: { code: string; type: string; message: string } }).error;

  it('a key past expires_at gets 401 key_expired, distinct from an invalid key; one before it works', async () => {
    const k = await createKey({
      name: 'short-lived',
      expires_at: Date.now() + 700,
      metadata: { owner: 'ops' },
    });
    expect((await chat(k.key)).status).toBe(200);
    await sleep(1300);
    const expired = await chat(k.key);
    expect(expired.status).toBe(401);
    expect(await errorOf(expired)).toMatchObject({ code: 'key_expired', type: 'authentication_error' });
    const invalid = await chat('llmgw_not-a-key');
    expect(invalid.status).toBe(401);
    expect((await errorOf(invalid)).code).toBe('unauthorized');
    const listed = (await (await fetch(`${stack.apiUrl}/admin/keys/${k.id}`, { headers: admin })).json()) as {
      expired: boolean;
      name: string;
      metadata: Record<string, string>;
    };
    expect(listed).toMatchObject({ expired: true, name: 'short-lived', metadata: { owner: 'ops' } });
    // Made in the past: refused at creation.
    const past = await fetch(`${stack.apiUrl}/admin/keys`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ user: 'alice', expires_at: '2020-01-01T00:00:00Z' }),
    });
    expect(past.status).toBe(400);
  });

  it('models ["a"]: 403 model_not_allowed on "b" in each endpoint\'s shape, and /v1/models lists only "a"', async () => {
    const k = await createKey({ models: [DEFAULT_MODEL] });
    expect((await chat(k.key)).status).toBe(200);
    const refused = await chat(k.key, { model: OTHER_MODEL });
    expect(refused.status).toBe(403);
    expect(await errorOf(refused)).toMatchObject({ code: 'model_not_allowed', type: 'permission_error' });
    const anthropic = await fetch(`${stack.apiUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': k.key, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: OTHER_MODEL,
        max_tokens: 2,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(anthropic.status).toBe(403);
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    const seed = await fetch(`${stack.apiUrl}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: OTHER_MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        stream: false,
      }),
    });
    expect(seed.status).toBe(403);
    expect(await seed.json()).toMatchObject({ error: 'model_not_allowed' });

    const models = (await (
      await fetch(`${stack.apiUrl}/v1/models`, { headers: { authorization: `Bearer ${k.key}` } })
    ).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual([DEFAULT_MODEL]);
    const hidden = await fetch(`${stack.apiUrl}/v1/models/${OTHER_MODEL}`, {
      headers: { authorization: `Bearer ${k.key}` },
    });
    expect(hidden.status).toBe(404);
    // A key without a list sees both.
    const all = (await (await stack.fetch('/v1/models')).json()) as { data: { id: string }[] };
    expect(all.data.map((m) => m.id).sort()).toEqual([DEFAULT_MODEL, OTHER_MODEL].sort());
  });

  it("a key's own requests_per_min is counted for the key alone; the user's other keys keep the tier's", async () => {
    const limited = await createKey({ limits: { requests_per_min: 2 } });
    const other = await createKey({});
    expect((await chat(limited.key)).status).toBe(200);
    const second = await chat(limited.key);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-ratelimit-limit')).toBe('2');
    const third = await chat(limited.key);
    expect(third.status).toBe(429);
    expect((await errorOf(third)).code).toBe('rate_limit_exceeded');
    const ok = await chat(other.key);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('60');
  });

  it('tokens_per_min: the reservation is taken from a bucket; 429 with Retry-After and x-ratelimit-*-tokens', async () => {
    const k = await createKey({ limits: { tokens_per_min: 300 } });
    const first = await chat(k.key, { max_tokens: 200 });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('300');
    const left = Number(first.headers.get('x-ratelimit-remaining-tokens'));
    expect(left).toBeLessThan(100);
    // The job used a few prompt tokens and 2 of its 200: the rest is back once its worker settles.
    const settled = await until(async () => {
      const res = await chat(k.key, { max_tokens: 200 });
      return res.status === 200;
    });
    expect(settled).toBe(true);
    // Two reservations at once: the second does not fit.
    const [a, b] = await Promise.all([chat(k.key, { max_tokens: 150 }), chat(k.key, { max_tokens: 150 })]);
    const refused = [a, b].find((r) => r.status === 429)!;
    expect([a.status, b.status].sort()).toEqual([200, 429]);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('x-ratelimit-limit-tokens')).toBe('300');
    expect(refused.headers.get('x-ratelimit-reset-tokens')).toMatch(/^(\d+m)?\d+s$/);
    expect((await errorOf(refused)).code).toBe('rate_limit_exceeded');
    // Larger than the whole bucket: never passes, and says so.
    const huge = await chat(k.key, { max_tokens: 400 });
    expect(huge.status).toBe(429);
    expect(huge.headers.get('x-should-retry')).toBe('false');
    expect((await errorOf(huge)).message).toMatch(/lower max_tokens/);
  });

  it('monthly_budget: once spent, 429 budget_exceeded, final (insufficient_quota for OpenAI clients)', async () => {
    const k = await createKey({ monthly_budget: 150 });
    const first = await chat(k.key, { max_tokens: 100 });
    expect(first.status).toBe(200);
    // Settled to the real usage (a few prompt tokens + 2), the budget has room for another small one.
    let spent = false;
    for (let i = 0; i < 40 && !spent; i++) {
      const res = await chat(k.key, { max_tokens: 60 });
      if (res.status === 429) {
        expect(res.headers.get('x-should-retry')).toBe('false');
        expect(await errorOf(res)).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota' });
        spent = true;
      } else expect(res.status).toBe(200);
    }
    expect(spent).toBe(true);
  });

  it('rotation: a new secret under the same id; the old one works for the grace, then gets key_expired', async () => {
    const k = await createKey({ name: 'rotating' });
    expect((await chat(k.key)).status).toBe(200);
    const res = await fetch(`${stack.apiUrl}/admin/keys/${k.id}/rotate`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ grace_seconds: 1 }),
    });
    expect(res.status).toBe(201);
    const rotated = (await res.json()) as CreatedKey & { name: string };
    expect(rotated.id).toBe(k.id);
    expect(rotated.name).toBe('rotating');
    expect(rotated.key).not.toBe(k.key);
    expect((await chat(rotated.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    await sleep(1700);
    const old = await chat(k.key);
    expect(old.status).toBe(401);
    expect((await errorOf(old)).code).toBe('key_expired');
    expect((await chat(rotated.key)).status).toBe(200);
    const list = (await (await fetch(`${stack.apiUrl}/admin/keys`, { headers: admin })).json()) as {
      data: CreatedKey[];
    };
    expect(list.data.filter((r) => r.id === k.id)).toHaveLength(1);
    // Revoking the id revokes every secret it had.
    expect(
      (await fetch(`${stack.apiUrl}/admin/keys/${k.id}`, { method: 'DELETE', headers: admin })).status,
    ).toBe(200);
    await sleep(600);
    expect((await chat(rotated.key)).status).toBe(401);
  });

  it('last_used_at is written when a key is used (at most once a minute)', async () => {
    const k = await createKey({});
    const before = Date.now();
    expect((await chat(k.key)).status).toBe(200);
    const seen = await until(async () => {
      const r = (await (
        await fetch(`${stack.apiUrl}/admin/keys/${k.id}`, { headers: admin })
      ).json()) as CreatedKey;
      return (r.last_used_at ?? 0) >= before;
    });
    expect(seen).toBe(true);
  });
});

async function until(pred: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await sleep(100);
  }
  return false;
}
