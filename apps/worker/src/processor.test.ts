import { randomUUID } from 'node:crypto';
import { DEFAULT_MODEL } from '@llmgw/config';
import { createLogger } from '@llmgw/observability';
import { decodeEvent, JOB_VERSION, type JobEvent } from '@llmgw/protocol';
import { createKeys, createRedis, quitQuietly, readLedger, utcDay } from '@llmgw/redis';
import { type Simulator, startSimulator } from '@llmgw/sim';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { parseWorkerEnv } from './env.ts';
import { WorkerService, workerOptionsFromEnv } from './service.ts';

/** The worker on its own: jobs put on its queue by hand, events read off the reply channel. */
describe('chat job processor', () => {
  const prefix = `test-${randomUUID()}`;
  const keys = createKeys(prefix);
  const replyTo = `${prefix}:reply:test`;
  let sim: Simulator;
  let worker: WorkerService;
  let queue: Queue;
  let sub: Redis;
  let redis: Redis;
  const events = new Map<string, JobEvent[]>();

  beforeAll(async () => {
    const redisUrl = inject('redisUrl');
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1, extraDeltaField: 'audio' });
    const env = parseWorkerEnv({
      REDIS_URL: redisUrl,
      KEY_PREFIX: prefix,
      LLM_BASE_URL: `${sim.url}/v1`,
      METRICS_PORT: '0',
    });
    worker = await WorkerService.start(
      workerOptionsFromEnv(
        env,
        createLogger({ service: 'worker', instance: 'w-test', level: 'silent' }),
        'w-test',
      ),
    );
    redis = createRedis(redisUrl, 'worker', 'test-assert');
    sub = createRedis(redisUrl, 'worker', 'test-sub');
    await sub.subscribe(replyTo);
    sub.on('message', (_channel, raw: string) => {
      const ev = decodeEvent(raw);
      if (ev) events.set(ev.id, [...(events.get(ev.id) ?? []), ev]);
    });
    queue = new Queue(keys.queueName(DEFAULT_MODEL), { connection: redis, prefix: keys.bullPrefix });
  });
  afterAll(async () => {
    await queue?.close();
    await worker?.close(1000);
    await sim?.close();
    await quitQuietly(sub);
    const left = await redis.keys(`${prefix}:*`);
    if (left.length > 0) await redis.del(...left);
    await quitQuietly(redis);
  });

  const job = (extra: Record<string, unknown>) => ({
    v: JOB_VERSION,
    kind: 'chat',
    replyTo,
    requestId: 'r1',
    model: DEFAULT_MODEL,
    messages: [{ role: 'user', content: 'hi' }],
    params: { max_tokens: 4 },
    enqueuedAt: Date.now(),
    ...extra,
  });
  const terminal = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const last = events.get(id)?.at(-1);
      if (last && (last.type === 'done' || last.type === 'error')) return last;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no terminal event for ${id}`);
  };

  it('refuses a job of another version instead of half-running it, and says so on the reply channel', async () => {
    const id = randomUUID();
    await queue.add('chat', job({ v: 1 }), { jobId: id });
    expect(await terminal(id)).toMatchObject({
      type: 'error',
      error: 'invalid_job',
      message: expect.stringContaining(`job version ${JOB_VERSION}, not 1`),
    });
    expect(sim.stats().requests).toBe(0);
  });

  it('a job the api gave up on is never run, and its whole quota reservation goes back', async () => {
    const id = randomUUID();
    const quotaKey = keys.quota('u1', '20991231');
    await redis.set(quotaKey, '100');
    await redis.set(keys.cancelled(id), 'worker_lost');
    const before = sim.stats().requests;
    await queue.add(
      'chat',
      job({ userId: 'u1', keyId: 'key_u1', quota: { key: quotaKey, reserved: 100, promptEstimate: 5 } }),
      { jobId: id },
    );
    await vi.waitFor(async () => expect(await redis.get(quotaKey)).toBe('0'), { timeout: 5000 });
    expect(sim.stats().requests).toBe(before);
    // Its end, as the api gave it up, says it used nothing; the ledger counts it so, once.
    expect(events.get(id)).toEqual([
      expect.objectContaining({
        type: 'error',
        error: 'worker_lost',
        usage: { promptTokens: 0, completionTokens: 0 },
      }),
    ]);
    await vi.waitFor(async () =>
      expect(await readLedger(redis, keys, ['u1'], [utcDay()])).toEqual([
        expect.objectContaining({ keyId: 'key_u1', outcome: 'failed', promptTokens: 0, jobs: 1 }),
      ]),
    );
  });

  it('streams typed deltas and counts what the backend sent that nobody relays', async () => {
    const id = randomUUID();
    await queue.add('chat', job({}), { jobId: id });
    expect(await terminal(id)).toMatchObject({ type: 'done', finishReason: 'length' });
    const text = events
      .get(id)!
      .flatMap((e) => (e.type === 'delta' ? e.d : []))
      .map((d) => (d.k === 'text' ? d.t : ''))
      .join('');
    expect(text.split(' ')).toHaveLength(4);
    const metrics = await worker.metrics.registry.metrics();
    expect(metrics).toMatch(/llm_backend_dropped_total\{model="sim-llama-3-8b",field="delta.audio"\} 1/);
  });

  it('counts a job in the usage ledger once, with its done event’s numbers, however often it ends', async () => {
    const id = randomUUID();
    const user = `ledger-${id}`;
    const ledger = () => readLedger(redis, keys, [user], [utcDay()]);
    await queue.add('chat', job({ userId: user, keyId: 'key_ledger' }), { jobId: id });
    const done = await terminal(id);
    if (done.type !== 'done') throw new Error(`not done: ${done.type}`);
    // The backend's own count: the simulator's prompt estimate and the 4 generated tokens.
    expect(done.usage).toEqual({ promptTokens: expect.any(Number), completionTokens: 4 });
    expect(done.usage.promptTokens).toBeGreaterThan(0);
    const counted = {
      keyId: 'key_ledger',
      model: DEFAULT_MODEL,
      outcome: 'completed',
      promptTokens: done.usage.promptTokens,
      completionTokens: 4,
      jobs: 1,
    };
    await vi.waitFor(async () => expect(await ledger()).toEqual([expect.objectContaining(counted)]));

    // The same job handed out and run again (what a stalled job's re-run is): it generates
    // again, and is still counted once.
    await queue.remove(id);
    events.delete(id);
    const requests = sim.stats().requests;
    await queue.add('chat', job({ userId: user, keyId: 'key_ledger' }), { jobId: id });
    expect(await terminal(id)).toMatchObject({ type: 'done' });
    expect(sim.stats().requests).toBe(requests + 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await ledger()).toEqual([expect.objectContaining(counted)]);
  });
});
