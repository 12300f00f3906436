import { ApiKeyStore } from '@llmgw/api';
import { until } from '@llmgw/devkit';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

const MODEL = 'sim-llama-3-8b';
const ask = (content: string, max_tokens: number) => ({ messages: [{ role: 'user', content }], max_tokens });

describe('tier-aware load shedding', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('default tiers, QUEUE_MAX_WAITING 6: free refused from 2 waiting, pro from 4, enterprise at 6; /ready 503 only at 6', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 20, outputTokens: 4000 },
      workers: [{ WORKER_CONCURRENCY: '1' }],
      api: { QUEUE_MAX_WAITING: '6' },
    });
    const store = new ApiKeyStore(stack.redis, stack.keys);
    const as = async (user: string, tier: string) => ({
      headers: { authorization: `Bearer ${(await store.create(user, tier)).key}` },
    });
    const free = await as('free-user', 'free');
    const pro = await as('pro-user', 'pro');
    const q = new Queue(stack.keys.queueName(MODEL), {
      connection: stack.redis,
      prefix: stack.keys.bullPrefix,
    });
    const depth = async () => {
      const c = await q.getJobCounts('wait', 'prioritized');
      return (c.wait ?? 0) + (c.prioritized ?? 0);
    };
    const ready = async () => (await stack!.fetch('/ready')).status;
    const admitted: ReturnType<Stack['chat']>[] = [];
    /** A request that is admitted and waits: the queue grows by one. */
    const enqueue = async (content: string, opts = {}) => {
      const before = await depth();
      admitted.push(stack!.chat(ask(content, 2), opts));
      expect(await until(async () => (await depth()) === before + 1)).toBe(true);
    };

    // The one slot held (the stack's enterprise user) until the end; three enterprise jobs wait.
    let release = false;
    const hold = stack.chat(ask('hold the slot', 4000), { onData: () => release });
    expect(await until(() => stack!.sim!.stats().running === 1)).toBe(true);
    for (const i of [1, 2, 3]) await enqueue(`enterprise ${i}`);

    const shed = await stack.chat(ask('free at 3', 2), free);
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBeTruthy();
    expect(JSON.parse(shed.body)).toMatchObject({ error: 'server_overloaded', queue_depth: 3 });
    expect(JSON.parse(shed.body).message).toContain("tier 'free'");
    expect(await depth()).toBe(3);
    expect(await ready()).toBe(200);

    await enqueue('pro at 3', pro);
    await enqueue('enterprise at 4');
    expect((await stack.chat(ask('pro at 5', 2), pro)).status).toBe(503);
    expect(await ready()).toBe(200);
    await enqueue('enterprise at 5');

    // 6 waiting: the hard ceiling, where even enterprise is refused, and only now not ready.
    const full = await stack.chat(ask('enterprise at 6', 2));
    expect(full.status).toBe(503);
    expect(JSON.parse(full.body)).toMatchObject({ error: 'server_overloaded', queue_depth: 6 });
    const notReady = await stack.fetch('/ready');
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, reason: 'queue_full', queue_depth: 6 });

    const metrics = await (await stack.fetch('/metrics')).text();
    for (const t of ['free', 'pro', 'enterprise'])
      expect(metrics).toContain(
        `llm_admission_rejections_total{model="${MODEL}",reason="server_overloaded",tier="${t}"} 1`,
      );

    release = true;
    await hold;
    for (const r of await Promise.all(admitted)) expect(seedTokens(r.data)).toHaveLength(2);
    expect(await ready()).toBe(200);
    await q.close();
  });
});
