import { DEFAULT_MODEL } from '@llmgw/config';
import { type BatchResult, type ChatJob, JOB_VERSION, Transcript } from '@llmgw/protocol';
import { enqueueBatchJobs, utcDay } from '@llmgw/redis';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request of batch `batchId`, as the batches API enqueues it. */
const batchJob = (batchId: string, index: number): ChatJob => ({
  v: JOB_VERSION,
  kind: 'chat',
  replyTo: `batch-${batchId}-${index}`,
  graceMs: -1,
  requestId: `${batchId}-${index}`,
  model: DEFAULT_MODEL,
  messages: [{ role: 'user', content: `batch ${batchId} request ${index}` }],
  params: { max_tokens: 4 },
  userId: 'batch-owner',
  enqueuedAt: Date.now(),
  batch: { id: batchId, index, customId: `req-${index}` },
});

/**
 * The worker's batch lane on a real stack (simulator, worker, api): a model's batch queue is
 * drained only in idle slots, each request's end is recorded once in its batch's results, and
 * a cancelled batch's requests that had not started never do. The batches API enqueues these
 * jobs; here the test does, with the same enqueueBatchJobs.
 */
describe('batch lane: idle slots only, each request recorded once', () => {
  let stack: Stack;
  let batchQueue: Queue;
  beforeAll(async () => {
    // One slot per model, and one of them for batches: an interactive job and a batch request
    // may run side by side, and every further interactive job waits in the queue.
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 25, maxNumSeqs: 4 },
      workers: [{ WORKER_CONCURRENCY: '1', BATCH_MAX_SLOTS_FRACTION: '0.5' }],
    });
    batchQueue = new Queue(stack.keys.batchQueueName(DEFAULT_MODEL), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
  });
  afterAll(async () => {
    await batchQueue?.close();
    await stack?.close();
  });

  const startBatch = async (id: string, total: number) => {
    await stack.redis.hset(stack.keys.batch(id), { status: 'in_progress', total, completed: 0, failed: 0 });
    await stack.redis.pexpire(stack.keys.batch(id), 600_000);
    await enqueueBatchJobs(
      batchQueue,
      Array.from({ length: total }, (_, i) => batchJob(id, i)),
    );
  };
  const results = async (id: string) =>
    Object.fromEntries(
      Object.entries(await stack.redis.hgetall(stack.keys.batchResults(id))).map(([k, v]) => [
        Number(k),
        JSON.parse(v) as BatchResult,
      ]),
    );

  it('30 requests: each answered once, its answer kept, the counts right; the backend saw 30', async () => {
    await startBatch('b-all', 30);
    const completed = async () => Number(await stack.redis.hget(stack.keys.batch('b-all'), 'completed'));
    // While it runs, its owner holds no place: the batch never counts against the owner's
    // interactive caps (max_concurrent, fair share).
    for (let i = 0; i < 100 && (await completed()) === 0; i++) await sleep(20);
    expect(await stack.redis.zcard(stack.keys.inflight('batch-owner', 'running'))).toBe(0);
    const done = async () => (await completed()) === 30;
    for (let i = 0; i < 200 && !(await done()); i++) await sleep(100);
    expect(await stack.redis.hgetall(stack.keys.batch('b-all'))).toMatchObject({
      completed: '30',
      failed: '0',
    });
    const got = await results('b-all');
    expect(Object.keys(got)).toHaveLength(30);
    for (const r of Object.values(got)) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const t = new Transcript();
      t.add(r.deltas);
      expect(t.text.length).toBeGreaterThan(0);
      expect(r.usage.completionTokens).toBe(4);
      expect(r.finishReason).toBe('length');
    }
    const seen = stack.sim!.requests().filter((l) => JSON.stringify(l.body).includes('batch b-all'));
    expect(seen).toHaveLength(30);
    // The owner's usage ledger has them on a line of their own: outcome `batch`, 30 jobs.
    const ledger = async () => stack.redis.hgetall(stack.keys.usage('batch-owner', utcDay()));
    for (let i = 0; i < 50 && !Object.keys(await ledger()).some((f) => f.endsWith('|batch')); i++)
      await sleep(50);
    const line = Object.entries(await ledger()).find(([f]) => f.endsWith(`|${DEFAULT_MODEL}|batch`));
    expect(line?.[1].split(' ')[2]).toBe('30');
  });

  it('while interactive jobs wait, no batch request starts: the backend sees every interactive one first', async () => {
    // Five interactive streams on one slot: one runs, four wait in the queue.
    const interactive = Array.from({ length: 5 }, (_, i) =>
      stack.chat(
        { model: DEFAULT_MODEL, messages: [{ role: 'user', content: `interactive ${i}` }], max_tokens: 8 },
        {},
        '/chat',
      ),
    );
    // Until the api has put them on the queue.
    const interactiveSeen = () =>
      stack.sim!.requests().some((l) => JSON.stringify(l.body).includes('interactive'));
    for (let i = 0; i < 50 && !interactiveSeen(); i++) await sleep(20);
    await startBatch('b-idle', 6);
    const answers = await Promise.all(interactive);
    for (const a of answers) expect(a.status).toBe(200);
    for (let i = 0; i < 100; i++) {
      if (Number(await stack.redis.hget(stack.keys.batch('b-idle'), 'completed')) === 6) break;
      await sleep(100);
    }
    const order = stack
      .sim!.requests()
      .map((l) => JSON.stringify(l.body))
      .filter((b) => b.includes('interactive') || b.includes('b-idle'))
      .map((b) => (b.includes('interactive') ? 'i' : 'b'));
    expect(order.filter((o) => o === 'b')).toHaveLength(6);
    // Every interactive request reached the backend before the first batch request did.
    expect(order.lastIndexOf('i')).toBeLessThan(order.indexOf('b'));
  });

  it('a cancelled batch: its requests that had not started never reach the backend, and are counted cancelled', async () => {
    await stack.redis.hset(stack.keys.batch('b-stop'), {
      status: 'cancelling',
      total: 5,
      completed: 0,
      failed: 0,
    });
    await stack.redis.pexpire(stack.keys.batch('b-stop'), 600_000);
    await enqueueBatchJobs(
      batchQueue,
      Array.from({ length: 5 }, (_, i) => batchJob('b-stop', i)),
    );
    for (let i = 0; i < 100; i++) {
      if (Number(await stack.redis.hget(stack.keys.batch('b-stop'), 'cancelled')) === 5) break;
      await sleep(50);
    }
    expect(await stack.redis.hget(stack.keys.batch('b-stop'), 'cancelled')).toBe('5');
    expect(stack.sim!.requests().filter((l) => JSON.stringify(l.body).includes('b-stop'))).toHaveLength(0);
  });
});
