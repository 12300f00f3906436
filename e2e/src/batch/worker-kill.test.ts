import { DEFAULT_MODEL } from '@llmgw/config';
import { type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import { createKeys, createRedis, enqueueBatchJobs, quitQuietly, waitReady } from '@llmgw/redis';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';

const TOTAL = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A worker SIGKILLed in the middle of a batch, on real processes: BullMQ hands its running
 * requests out again once their locks expire, and the other worker refuses to run at the backend
 * any that reached it before (they end worker_lost). Counted at the simulator: no request's
 * prompt reaches it twice, and every request ends once.
 */
describe('batch lane: a worker killed mid-batch runs nothing twice', () => {
  let stack: SpawnedStack | undefined;
  let redis: Redis | undefined;
  let queue: Queue | undefined;
  afterAll(async () => {
    await queue?.close();
    if (redis) await quitQuietly(redis);
    await stack?.close('SIGKILL');
  });

  it(`${TOTAL} requests over 2 workers, one SIGKILLed while generating`, async () => {
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      // 40 tokens at 50 ms: each request takes 2 s, so the kill meets some mid-generation.
      sim: { SIM_TTFT_MS: '5', SIM_ITL_MS: '50', SIM_MAX_NUM_SEQS: '16' },
      workers: 2,
      worker: { WORKER_CONCURRENCY: '4', BATCH_MAX_SLOTS_FRACTION: '0.5', JOB_LOCK_MS: '2000' },
    });
    redis = createRedis(inject('redisUrl'), 'command', 'batch-kill-test');
    await waitReady(redis);
    const keys = createKeys(stack.prefix);
    queue = new Queue(keys.batchQueueName(DEFAULT_MODEL), { connection: redis, prefix: keys.bullPrefix });
    const id = 'kill';
    await redis.hset(keys.batch(id), { status: 'in_progress', total: TOTAL, completed: 0, failed: 0 });
    await redis.pexpire(keys.batch(id), 600_000);
    const jobs: ChatJob[] = Array.from({ length: TOTAL }, (_, i) => ({
      v: JOB_VERSION,
      kind: 'chat',
      replyTo: `batch-${id}-${i}`,
      graceMs: -1,
      requestId: `${id}-${i}`,
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: `killed batch request ${i}` }],
      params: { max_tokens: 40 },
      userId: 'batch-owner',
      enqueuedAt: Date.now(),
      batch: { id, index: i, customId: `req-${i}` },
    }));
    await enqueueBatchJobs(queue, jobs);

    const seen = async () => {
      const res = await fetch(`${stack!.simUrl}/sim/requests`);
      const body = (await res.json()) as { requests: { body: { messages?: { content: string }[] } }[] };
      return body.requests
        .map((r) => r.body.messages?.[0]?.content ?? '')
        .filter((c) => c.startsWith('killed batch request'));
    };
    // Both workers have batch requests generating: then one dies without a word.
    for (let i = 0; i < 100 && (await seen()).length < 4; i++) await sleep(50);
    stack.workers[0]!.child.kill('SIGKILL');
    await stack.workers[0]!.exited;

    const ended = async () => {
      const h = await redis!.hgetall(keys.batch(id));
      return Number(h.completed ?? 0) + Number(h.failed ?? 0);
    };
    for (let i = 0; i < 300 && (await ended()) < TOTAL; i++) await sleep(100);
    const counts = await redis.hgetall(keys.batch(id));
    expect(Number(counts.completed) + Number(counts.failed)).toBe(TOTAL);
    const prompts = await seen();
    // Once each at the backend, the killed ones included.
    expect(prompts.length).toBe(new Set(prompts).size);
    expect(new Set(prompts).size).toBe(TOTAL);
    // The requests the kill cut off ended worker_lost instead of running again.
    const results = Object.values(await redis.hgetall(keys.batchResults(id))).map(
      (v) => JSON.parse(v) as { ok: boolean; error?: string },
    );
    const lost = results.filter((r) => !r.ok);
    expect(lost.length).toBe(Number(counts.failed));
    expect(lost.length).toBeGreaterThan(0);
    for (const r of lost) expect(r.error).toBe('worker_lost');
  }, 60_000);
});
