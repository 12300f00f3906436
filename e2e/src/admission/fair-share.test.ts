import { ApiKeyStore } from '@llmgw/api';
import { postSSE, until } from '@llmgw/devkit';
import { utcDay } from '@llmgw/redis';
import { type JobType, Queue } from 'bullmq';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

const MODEL = 'sim-llama-3-8b';
const ask = (content: string, max_tokens: number) => ({ messages: [{ role: 'user', content }], max_tokens });
const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

const tier = (extra: Record<string, number>) => ({
  requests_per_min: 10_000,
  tokens_per_day: 100_000_000,
  priority: 2,
  ...extra,
});

/** Jobs of the default model in these BullMQ states, from Redis. */
async function jobCounts(stack: Stack, ...states: JobType[]): Promise<number> {
  const q = new Queue(stack.keys.queueName(MODEL), {
    connection: stack.redis,
    prefix: stack.keys.bullPrefix,
  });
  try {
    const c = await q.getJobCounts(...states);
    return Object.values(c).reduce((a, b) => a + b, 0);
  } finally {
    await q.close();
  }
}

/** Occupies the one slot (as the stack's own user) until `release()`: the client then leaves. */
function holdSlot(stack: Stack) {
  let released = false;
  const done = stack.chat(ask('hold the slot', 4000), { onData: () => released });
  return {
    done,
    running: () => until(() => stack.sim!.stats().running === 1),
    release: () => {
      released = true;
    },
  };
}

describe('fair share inside a tier', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it("a user's burst of 50 does not starve another user's single request: it starts within the next 2 slot openings", async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 8 },
      workers: [{ WORKER_CONCURRENCY: '2' }],
      api: {
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          team: tier({ max_waiting: 100, max_concurrent: 100 }),
        }),
        QUEUE_MAX_WAITING: '100',
        // Neither the deadline nor the starvation guard may reorder anything in this test.
        QUEUE_TIMEOUT_MS: '300000',
        PRIORITY_AGING_MS: '300000',
      },
    });
    const store = new ApiKeyStore(stack.redis, stack.keys);
    const a = (await store.create('user-a', 'team')).key;
    const b = (await store.create('user-b', 'team')).key;

    const burst = Array.from({ length: 50 }, (_, i) => stack!.chat(ask(`from a ${i}`, 8), bearer(a)));
    // Every one of A's requests is on the queue (waiting, running or done) before B asks.
    expect(
      await until(async () => (await jobCounts(stack!, 'wait', 'prioritized', 'active', 'completed')) === 50),
    ).toBe(true);
    let startedWhenBWasQueued: number | undefined;
    const single = stack.chat(ask('from b', 8), {
      ...bearer(b),
      // B's first frame says it is queued: by then it is admitted. Jobs started so far, read at
      // that moment (later than the enqueue itself, so the bound below only gets looser).
      onComment: (c) => {
        if (c.startsWith('queued')) startedWhenBWasQueued ??= stack!.sim!.requests().length;
        return undefined;
      },
    });
    const results = await Promise.all([...burst, single]);
    for (const r of results) expect(seedTokens(r.data)).toHaveLength(8);

    const order = stack.sim!.requests().map((r) => JSON.stringify(r.body));
    expect(order).toHaveLength(51);
    const bAt = order.findIndex((body) => body.includes('from b'));
    expect(startedWhenBWasQueued).toBeDefined();
    // B came while most of A's burst still waited (first come, first served would run it last)…
    expect(startedWhenBWasQueued!).toBeLessThan(48);
    // …and it took one of the next two slots that opened.
    expect(bAt).toBeLessThanOrEqual(startedWhenBWasQueued! + 1);
  });
});

describe('per-user caps', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('default free tier: a third waiting request gets 429 concurrency_limit_exceeded with Retry-After, nothing enqueued or reserved; the SDK retries it', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 4000 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
    });
    const free = (await new ApiKeyStore(stack.redis, stack.keys).create('free-user', 'free')).key;
    const slot = holdSlot(stack);
    await slot.running();
    const queued = [0, 1].map((i) => stack!.chat(ask(`free ${i}`, 3), bearer(free)));
    const waitingKey = stack.keys.inflight('free-user', 'waiting');
    expect(await until(async () => (await stack!.redis.zcard(waitingKey)) === 2)).toBe(true);
    const quotaKey = stack.keys.quota('free-user', utcDay());
    const reserved = await stack.redis.get(quotaKey);

    const refused = await stack.chat(ask('free 2', 3), bearer(free));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['x-should-retry']).toBeUndefined();
    expect(JSON.parse(refused.body)).toMatchObject({
      error: 'concurrency_limit_exceeded',
      waiting: 2,
      running: 0,
      max_waiting: 2,
      max_concurrent: 4,
    });
    expect(await jobCounts(stack, 'wait', 'prioritized')).toBe(2);
    expect(await stack.redis.zcard(waitingKey)).toBe(2);
    expect(await stack.redis.get(quotaKey)).toBe(reserved);

    // OpenAI's shape on /v1, a rate-limit error its SDK retries (after Retry-After).
    const before = stack.logs.find('request_rejected').length;
    const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: free, maxRetries: 1 });
    const err = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 3 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('concurrency_limit_exceeded');
    expect(stack.logs.find('request_rejected').length - before).toBe(2);

    slot.release();
    for (const r of await Promise.all(queued)) expect(seedTokens(r.data)).toHaveLength(3);
    const metrics = await (await stack.fetch('/metrics')).text();
    expect(metrics).toContain('llm_rate_limit_rejections_total{tier="free",limit="concurrency"} 3');
  });

  it('max_concurrent counts running jobs; a finished job frees its place for the next request at once', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 4000 },
      api: {
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          solo: tier({ max_concurrent: 1 }),
        }),
      },
    });
    const solo = (await new ApiKeyStore(stack.redis, stack.keys).create('solo-user', 'solo')).key;
    let second: Awaited<ReturnType<Stack['chat']>> | undefined;
    const first = await stack.chat(ask('first', 6), {
      ...bearer(solo),
      // Generating (not waiting): the place is taken by a running job.
      onData: () => {
        if (!second) void stack!.chat(ask('second', 6), bearer(solo)).then((r) => (second = r));
        return undefined;
      },
    });
    expect(seedTokens(first.data)).toHaveLength(6);
    expect(await until(() => second !== undefined)).toBe(true);
    expect(second!.status).toBe(429);
    expect(JSON.parse(second!.body)).toMatchObject({ error: 'concurrency_limit_exceeded', running: 1 });
    // The first one is over: the very next request passes, one after another.
    for (const n of [1, 2, 3]) {
      const next = await stack.chat(ask(`next ${n}`, 2), bearer(solo));
      expect(next.status).toBe(200);
      expect(seedTokens(next.data)).toHaveLength(2);
    }
    await expect.poll(() => stack!.redis.exists(stack!.keys.inflight('solo-user', 'running'))).toBe(0);
  });

  it("a dropped stream keeps its user's place until its job ends, not until the connection drops", async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 4000 },
      workers: [{ WORKER_CONCURRENCY: '4' }],
      api: {
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          duo: tier({ max_concurrent: 2 }),
        }),
      },
    });
    const duo = (await new ApiKeyStore(stack.redis, stack.keys).create('duo-user', 'duo')).key;
    const running = stack.keys.inflight('duo-user', 'running');
    // Two resumable streams, each dropped after its first frame: their jobs go on generating.
    const resumable = { headers: { authorization: `Bearer ${duo}`, prefer: 'resumable' } };
    const dropped = await Promise.all(
      ['one', 'two'].map((n) => stack!.chat(ask(`dropped ${n}`, 4000), { ...resumable, onData: () => true })),
    );
    for (const d of dropped) expect(d.disconnected).toBe(true);
    expect(await until(() => stack!.sim!.stats().running === 2)).toBe(true);
    expect(await stack.redis.zcard(running)).toBe(2);
    const third = await stack.chat(ask('third', 4), bearer(duo));
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body)).toMatchObject({ error: 'concurrency_limit_exceeded', running: 2 });
    // The jobs end (cancelled by their owner): the places are free, and the next request passes.
    for (const d of dropped) {
      const id = String(d.headers['x-job-id']);
      const r = await fetch(`${stack.apiUrl}/v1/jobs/${id}/cancel`, { method: 'POST', ...bearer(duo) });
      expect(r.status).toBe(200);
    }
    await expect.poll(() => stack!.redis.exists(running)).toBe(0);
    expect((await stack.chat(ask('after', 2), bearer(duo))).status).toBe(200);

    // Without asking, a dropped stream stops its job: the place is free as soon as it has ended.
    const gone = await stack.chat(ask('stopped', 4000), { ...bearer(duo), onData: () => true });
    expect(gone.disconnected).toBe(true);
    await expect.poll(() => stack!.redis.exists(running)).toBe(0);
    expect(stack.sim!.stats().running).toBe(0);
  });

  it('two api replicas share one count: of 10 concurrent requests over both, exactly max_waiting are admitted', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 4000 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
      api: {
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          enterprise: tier({ priority: 1 }),
          duo: tier({ max_waiting: 3 }),
        }),
      },
    });
    const second = await stack.startApi();
    const duo = (await new ApiKeyStore(stack.redis, stack.keys).create('duo-user', 'duo')).key;
    const slot = holdSlot(stack);
    await slot.running();
    const urls = [stack.apiUrl, second.url];
    let refusedSoFar = 0;
    const pending = Array.from({ length: 10 }, (_, i) =>
      postSSE(`${urls[i % 2]}/chat`, ask(`duo ${i}`, 2), bearer(duo)).then((r) => {
        if (r.status !== 200) refusedSoFar++;
        return r;
      }),
    );
    // Every request decided (refused at once, or admitted and waiting for the slot) before the
    // slot frees: a job starting would make room for another.
    const waitingKey = stack.keys.inflight('duo-user', 'waiting');
    expect(await until(async () => refusedSoFar + (await stack!.redis.zcard(waitingKey)) === 10)).toBe(true);
    slot.release();
    const results = await Promise.all(pending);
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(3);
    for (const r of ok) expect(seedTokens(r.data)).toHaveLength(2);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'concurrency_limit_exceeded', max_waiting: 3 });
    }
    await expect.poll(() => stack!.redis.exists(waitingKey)).toBe(0);
  });
});
