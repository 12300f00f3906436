import { DEFAULT_MODEL } from '@llmgw/config';
import { until } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * BullMQ keeps finished jobs for inspection (KEEP_FAILED: 5,000 for 24 h, KEEP_COMPLETED: 1,000
 * for 1 h). Before (issue 22): each kept its payload, so 20 prompts of 900 KiB that the backend
 * refused held 21 MB of Redis for a day at no quota cost. Now the worker replaces a finished
 * job's data with a summary: what it held is a couple of KiB, whatever the prompt.
 */
describe('finished jobs kept by BullMQ', () => {
  let stack: Stack;
  const queueKey = () => `${stack.keys.bullPrefix}:${stack.keys.queueName(DEFAULT_MODEL)}`;
  /** MEMORY USAGE of the job hashes in one of BullMQ's sets (SAMPLES 0: every field counted). */
  const heldBy = async (state: 'failed' | 'completed') => {
    const ids = await stack.redis.zrange(`${queueKey()}:${state}`, '0', '-1');
    const sizes = await Promise.all(
      ids.map(async (id) =>
        Number(await stack.redis.call('MEMORY', 'USAGE', `${queueKey()}:${id}`, 'SAMPLES', '0')),
      ),
    );
    return { ids, total: sizes.reduce((a, b) => a + b, 0), max: Math.max(0, ...sizes) };
  };
  const ask = async (content: string) => {
    const res = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content }], max_tokens: 8 }),
    });
    await res.text();
    return res.status;
  };

  beforeAll(async () => {
    stack = await startStack({ api: { BODY_LIMIT_BYTES: String(2 << 20) } });
  });
  afterAll(() => stack?.close());

  it('20 prompts of 900 KiB refused by the backend: their failed jobs hold < 4 KiB each, with a summary Bull Board can show', async () => {
    const N = 20;
    const big = 'x'.repeat(900 * 1024);
    // Far over the simulator's max-model-len (8,192 tokens): a 400 from the backend, never retried.
    const statuses = await Promise.all(Array.from({ length: N }, (_, i) => ask(`${i} ${big}`)));
    expect(statuses).toEqual(Array(N).fill(502));
    expect(await until(async () => (await stack.redis.zcard(`${queueKey()}:failed`)) === N)).toBe(true);

    const { ids, total, max } = await heldBy('failed');
    console.log(
      `kept jobs: ${N} failed jobs of 900 KiB prompts hold ${total} bytes (${Math.round(total / N)} per job, max ${max})`,
    );
    expect(max).toBeLessThan(4096);
    expect(total).toBeLessThan(N * 4096);

    const job = await stack.redis.hgetall(`${queueKey()}:${ids[0]}`);
    expect(JSON.parse(job.data!)).toMatchObject({
      ended: 'failed',
      error: 'backend_bad_request',
      model: DEFAULT_MODEL,
      userId: 'test-user',
      requestId: expect.any(String),
      messages: 1,
      payloadBytes: expect.any(Number),
    });
    expect(JSON.parse(job.data!).payloadBytes).toBeGreaterThan(900 * 1024);
    expect(job.failedReason).toMatch(/^backend_bad_request: /);
  });

  it('completed jobs keep the summary too: their usage, not their prompt', async () => {
    // 28 KiB: about 7,200 prompt tokens, within the simulator's 8,192.
    const prompt = 'y'.repeat(28 * 1024);
    const statuses = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(`${i} ${prompt}`)));
    expect(statuses).toEqual(Array(5).fill(200));
    expect(await until(async () => (await stack.redis.zcard(`${queueKey()}:completed`)) === 5)).toBe(true);
    const { ids, total, max } = await heldBy('completed');
    console.log(`kept jobs: 5 completed jobs of 28 KiB prompts hold ${total} bytes (max ${max})`);
    expect(max).toBeLessThan(4096);
    const data = JSON.parse((await stack.redis.hget(`${queueKey()}:${ids[0]}`, 'data'))!);
    expect(data).toMatchObject({
      ended: 'completed',
      model: DEFAULT_MODEL,
      userId: 'test-user',
      usage: { completionTokens: 8 },
    });
    expect(data.payloadBytes).toBeGreaterThan(28 * 1024);
  });
});
