import { spawnService } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

async function listModels(stack: Stack): Promise<string[]> {
  const res = await stack.fetch(`/v1/models`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { object: string; data: { id: string; object: string }[] };
  expect(body.object).toBe('list');
  return body.data.map((m) => m.id);
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('one queue per model, workers registered by heartbeat', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      sim: { ttftMs: 2, itlMs: 1, models: ['model-a', 'model-b'] },
      workers: [{ WORKER_MODELS: 'model-a' }, { WORKER_MODELS: 'model-b' }],
    });
  });
  afterAll(() => stack?.close());

  it('routes every request to a worker that serves its model, never the other', async () => {
    const requests = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'model-a' : 'model-b'));
    const results = await Promise.all(
      requests.map((model, i) =>
        stack.chat({
          model,
          messages: [{ role: 'user', content: `q${i}` }],
          max_tokens: 3,
        }),
      ),
    );
    for (const r of results) expect(seedTokens(r.data)).toHaveLength(3);
    const started = stack.logs.find('job_started');
    expect(started).toHaveLength(20);
    const instanceOf = { 'model-a': 'worker-0-', 'model-b': 'worker-1-' } as Record<string, string>;
    for (const line of started) {
      expect(String(line.instance).startsWith(instanceOf[String(line.model)]!)).toBe(true);
    }
  });

  it('/v1/models lists models with a live worker; a stopped worker disappears; 503 vs 404', async () => {
    expect((await listModels(stack)).sort()).toEqual(['model-a', 'model-b']);
    await stack.workers[1]!.close();
    expect(
      await eventually(
        () => listModels(stack),
        (m) => m.length === 1,
      ),
    ).toEqual(['model-a']);

    const unavailable = await stack.fetch(`/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'model-b', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(unavailable.status).toBe(503);
    expect(((await unavailable.json()) as { error: { code: string } }).error.code).toBe('model_unavailable');

    const unknown = await stack.fetch(`/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'model-z', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toBe('model_not_found');
  });

  it('a worker killed without a goodbye leaves /v1/models once its registration TTL runs out', async () => {
    const worker = spawnService('worker', {
      REDIS_URL: stack.redisUrl,
      KEY_PREFIX: stack.prefix,
      WORKER_MODELS: 'model-c',
      WORKER_TTL_MS: '1500',
      LLM_BASE_URL: `${stack.sim!.url}/v1`,
      INSTANCE_ID: 'doomed-worker',
      METRICS_PORT: '0',
    });
    try {
      await worker.waitFor((l) => l.msg === 'worker_started');
      expect(
        await eventually(
          () => listModels(stack),
          (m) => m.includes('model-c'),
        ),
      ).toContain('model-c');
      const ttl = await stack.redis.pttl(stack.keys.worker('doomed-worker'));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1500);
      await worker.stop('SIGKILL');
      expect(
        await eventually(
          () => listModels(stack),
          (m) => !m.includes('model-c'),
        ),
      ).not.toContain('model-c');
      expect(await stack.redis.exists(stack.keys.worker('doomed-worker'))).toBe(0);
    } finally {
      await worker.stop('SIGKILL');
    }
  });
});
