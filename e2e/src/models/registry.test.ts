import { randomUUID } from 'node:crypto';
import { ModelRegistry } from '@llmgw/api';
import { DEFAULT_MODEL } from '@llmgw/config';
import { deleteKeysWithPrefix, until } from '@llmgw/devkit';
import { createKeys } from '@llmgw/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

interface Health {
  status: string;
  checks: { models: Record<string, { status: string }> };
}

describe('MODEL_FORGET_AFTER_MS: a model no worker served for that long is forgotten', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      sim: { ttftMs: 2, itlMs: 1 },
      // Heartbeats every 300 ms (a third of the TTL), so a refreshed score shows quickly.
      workers: [{ WORKER_TTL_MS: '900' }],
      api: { MODEL_FORGET_AFTER_MS: '60000' },
    });
  });
  afterAll(() => stack?.close());

  const health = async () => (await (await stack.fetch('/health')).json()) as Health;
  const ask = (model: string) =>
    stack.chat({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  // /chat's error body: `{"error": "<code>", "message": …}`.
  const errorCode = (body: string) => (JSON.parse(body) as { error: string }).error;

  it("every heartbeat records when each of the worker's models was last seen", async () => {
    const first = Number(await stack.redis.zscore(stack.keys.modelsSeen, DEFAULT_MODEL));
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(Date.now());
    expect(
      await until(async () => Number(await stack.redis.zscore(stack.keys.modelsSeen, DEFAULT_MODEL)) > first),
    ).toBe(true);
  });

  it('kept (degraded, 503) while seen recently; dropped once seen longer ago: healthy, 404', async () => {
    const { redis, keys } = stack;
    const gone = 'departed-model';
    await redis
      .multi()
      .sadd(keys.models, gone)
      .zadd(keys.modelsSeen, Date.now() - 30_000, gone)
      .sadd(keys.modelWorkers(gone), 'worker-that-died')
      .exec();
    expect(
      await until(async () => (await health()).checks.models[gone]?.status === 'unavailable', 10_000),
    ).toBe(true);
    expect((await health()).status).toBe('degraded');
    const refused = await ask(gone);
    expect(refused.status).toBe(503);
    expect(errorCode(refused.body)).toBe('model_unavailable');

    await redis.zadd(keys.modelsSeen, Date.now() - 120_000, gone);
    expect(await until(async () => (await health()).status === 'healthy', 10_000)).toBe(true);
    expect((await health()).checks.models[gone]).toBeUndefined();
    expect(await redis.sismember(keys.models, gone)).toBe(0);
    expect(await redis.zscore(keys.modelsSeen, gone)).toBeNull();
    expect(await redis.exists(keys.modelWorkers(gone))).toBe(0);
    const unknown = await ask(gone);
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown.body)).toBe('model_not_found');
    // The served model is untouched.
    expect(await redis.sismember(keys.models, DEFAULT_MODEL)).toBe(1);
    expect((await ask(DEFAULT_MODEL)).status).toBe(200);
  });

  it('a registered model without a last-seen score (an older worker wrote it) starts its clock', async () => {
    const { redis, keys } = stack;
    const before = Date.now();
    await redis.sadd(keys.models, 'legacy-model');
    expect(
      await until(async () => {
        await health();
        return (await redis.zscore(keys.modelsSeen, 'legacy-model')) !== null;
      }, 10_000),
    ).toBe(true);
    expect(Number(await redis.zscore(keys.modelsSeen, 'legacy-model'))).toBeGreaterThanOrEqual(before - 1000);
    expect(await redis.sismember(keys.models, 'legacy-model')).toBe(1);
  });
});

describe('ModelRegistry forgetAfterMs', () => {
  const redisUrl = inject('redisUrl');
  const keys = createKeys(`test-${randomUUID()}`);
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ noSim: true, workers: [] });
  });
  afterAll(async () => {
    await stack?.close();
    await deleteKeysWithPrefix(redisUrl, keys.prefix);
  });

  it('0 never forgets; a positive value does, and MODELS (declared) are never forgotten', async () => {
    const { redis } = stack;
    for (const m of ['ancient-model', 'declared-model'])
      await redis.multi().sadd(keys.models, m).zadd(keys.modelsSeen, 1, m).exec();
    const never = await new ModelRegistry(redis, keys, 0, { forgetAfterMs: 0 }).snapshot();
    expect([...never.known].sort()).toEqual(['ancient-model', 'declared-model']);
    expect(await redis.scard(keys.models)).toBe(2);

    const forgetting = new ModelRegistry(redis, keys, 0, {
      forgetAfterMs: 60_000,
      declared: ['declared-model'],
    });
    expect([...(await forgetting.snapshot()).known]).toEqual(['declared-model']);
    expect(await redis.smembers(keys.models)).toEqual([]);
    expect(await redis.zcard(keys.modelsSeen)).toBe(0);
  });
});
