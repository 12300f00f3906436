import { ApiKeyStore } from '@llmgw/api';
import { postSSE, until } from '@llmgw/devkit';
import { type Simulator, startSimulator } from '@llmgw/sim';
import { Queue } from 'bullmq';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';
import { seedTokens } from '../support/direct.ts';

const ask = (content: string, max_tokens: number, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content }],
  max_tokens,
  ...extra,
});

describe('global concurrency and backpressure across replicas', () => {
  let sim: Simulator | undefined;
  let stack: SpawnedStack | undefined;
  afterAll(async () => {
    await stack?.close('SIGKILL');
    await sim?.close();
  });

  it('2 apis + 2 workers (4 slots each), 40 concurrent: never more than 8 generations, 503 only past the depth, the rest complete', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 20, itlMs: 20, maxNumSeqs: 64 });
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: false,
      env: { LLM_BASE_URL: `${sim.url}/v1` },
      worker: { WORKER_CONCURRENCY: '4' },
      workers: 2,
      api: { AUTH_MODE: 'trusted_headers' },
      apis: 2,
    });
    const { apiUrls } = stack;

    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        postSSE(`${apiUrls[i % 2]}/chat`, ask(`load ${i}`, 10), {
          headers: { 'x-user-id': 'load-tester', 'x-user-tier': 'enterprise' },
        }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status !== 200);
    expect(sim.stats().peakRunning).toBeLessThanOrEqual(8);
    expect(sim.stats().peakRunning).toBeGreaterThan(1);
    for (const r of ok) expect(seedTokens(r.data)).toHaveLength(10);
    expect(ok.length).toBeGreaterThanOrEqual(8 + 24);
    for (const r of rejected) {
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBeTruthy();
      const body = JSON.parse(r.body) as { error: string; queue_depth: number };
      expect(body.error).toBe('server_overloaded');
      expect(body.queue_depth).toBeGreaterThanOrEqual(24);
    }
  });
});

describe('waiting, cancelling and deadlines (one slot)', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  const slow = { ttftMs: 10, itlMs: 50 };

  it('a client that leaves while waiting: its job is removed from Redis and never runs', async () => {
    stack = await startStack({ sim: slow, workers: [{ WORKER_CONCURRENCY: '1' }] });
    const busy = stack.chat(ask('long one', 40));
    await until(() => stack!.sim!.stats().running === 1);
    const waiter = await stack.chat(ask('will leave', 5), {
      onComment: (c) => c.startsWith('queued position=1'),
    });
    expect(waiter.comments[0]).toBe('queued position=1');
    expect(await until(() => stack!.logs.find('job_abandoned').some((l) => l.how === 'removed'))).toBe(true);
    const q = new Queue(stack.keys.queueName('sim-llama-3-8b'), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
    const counts = await q.getJobCounts('wait', 'prioritized', 'active');
    await q.close();
    expect(counts.wait! + counts.prioritized!).toBe(0);
    expect(seedTokens((await busy).data)).toHaveLength(40);
    expect(stack.sim!.stats().requests).toBe(1);
  });

  it('a client that leaves while generating: the backend sees the abort and the next job starts at once', async () => {
    stack = await startStack({ sim: slow, workers: [{ WORKER_CONCURRENCY: '1' }] });
    let leftAt = 0;
    let next: ReturnType<Stack['chat']> | undefined;
    // At its first token the leaver queues the next request behind itself (the one slot is
    // busy), then disconnects.
    await stack.chat(ask('generating', 100), {
      onData: (_d, at) => {
        next = stack!.chat(ask('next in line', 3));
        leftAt = at;
        return true;
      },
    });
    expect(await until(() => stack!.sim!.stats().aborted === 1)).toBe(true);
    const res = await next!;
    expect(seedTokens(res.data)).toHaveLength(3);
    // The leaver had ~99 tokens × 50 ms ≈ 5 s left; the next job got the slot long before that.
    expect(res.times[0]! - leftAt).toBeLessThan(3000);
    expect(stack.logs.find('job_cancel').length).toBe(1);
  });

  it('a job waiting past QUEUE_TIMEOUT_MS is removed; its client gets queue_timeout (frame or 503)', async () => {
    stack = await startStack({
      sim: slow,
      workers: [{ WORKER_CONCURRENCY: '1' }],
      api: { QUEUE_TIMEOUT_MS: '400', QUEUE_POSITION_INTERVAL_MS: '100' },
    });
    const busy = stack.chat(ask('hog the slot', 40));
    await until(() => stack!.sim!.stats().running === 1);
    const streamed = await stack.chat(ask('too late', 5));
    expect(streamed.status).toBe(200);
    expect(streamed.comments).toContain('queued position=1');
    expect(JSON.parse(streamed.data[0]!)).toMatchObject({ error: { type: 'queue_timeout' } });
    const plain = await stack.fetch(`/chat`, {
      method: 'POST',
      body: JSON.stringify(ask('too late', 5, { stream: false })),
    });
    expect(plain.status).toBe(503);
    expect(((await plain.json()) as { error: string }).error).toBe('queue_timeout');
    await busy;
    // Neither expired job ever reached the backend.
    expect(stack.sim!.stats().requests).toBe(1);
  });
});

describe('MODEL_MAX_CONCURRENCY', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('caps generations per model across workers (BullMQ global concurrency)', async () => {
    const w = { WORKER_CONCURRENCY: '4', MODEL_MAX_CONCURRENCY: '3' };
    stack = await startStack({ sim: { ttftMs: 10, itlMs: 10, maxNumSeqs: 64 }, workers: [w, w] });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => stack!.chat(ask(`c${i}`, 8))));
    for (const r of results) expect(seedTokens(r.data)).toHaveLength(8);
    expect(stack.sim!.stats().peakRunning).toBe(3);
  });
});

describe('priority by tier', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('with the one slot busy, an enterprise job queued after a free job starts first', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 40 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
      api: { QUEUE_POSITION_INTERVAL_MS: '100' },
    });
    const store = new ApiKeyStore(stack.redis, stack.keys);
    const free = (await store.create('free-user', 'free')).key;
    const ent = (await store.create('ent-user', 'enterprise')).key;
    const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

    const busy = stack.chat(ask('occupy', 10));
    await until(() => stack!.sim!.stats().running === 1);
    const freeJob = stack.chat(ask('free first in line', 2), as(free));
    await until(() => stack!.logs.find('request_started').length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    const entJob = stack.chat(ask('enterprise later', 2), as(ent));
    const [f, e] = await Promise.all([freeJob, entJob]);
    await busy;
    expect(seedTokens(e.data)).toHaveLength(2);
    expect(seedTokens(f.data)).toHaveLength(2);
    expect(e.times[0]!).toBeLessThan(f.times[0]!);
    const started = stack.logs.find('job_started').map((l) => l.request_id);
    expect(started.indexOf(e.headers['x-request-id'])).toBeLessThan(
      started.indexOf(f.headers['x-request-id']),
    );
  });

  it('starvation guard: a job waiting PRIORITY_AGING_MS is raised to the top priority', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 40 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
      api: { QUEUE_POSITION_INTERVAL_MS: '100', PRIORITY_AGING_MS: '300' },
    });
    const free = (await new ApiKeyStore(stack.redis, stack.keys).create('free-user', 'free')).key;
    const busy = stack.chat(ask('occupy', 25));
    await until(() => stack!.sim!.stats().running === 1);
    const waiting = stack.chat(ask('patient', 2), { headers: { authorization: `Bearer ${free}` } });
    expect(await until(() => stack!.logs.find('job_priority_aged').length === 1, 5000)).toBe(true);
    const jobId = String(stack.logs.find('job_priority_aged')[0]!.job_id);
    const q = new Queue(stack.keys.queueName('sim-llama-3-8b'), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
    expect((await q.getJob(jobId))?.priority).toBe(1);
    await q.close();
    expect(seedTokens((await waiting).data)).toHaveLength(2);
    await busy;
  });
});
