import { type RedisServerHandle, spawnRedisServer } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const hi = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
const TIMEOUT_MS = 500;

describe('a hung Redis (SIGSTOP): requests fail after REDIS_COMMAND_TIMEOUT_MS, not when it wakes', () => {
  let redis: RedisServerHandle;
  let stack: Stack;
  beforeAll(async () => {
    // A Redis of this test's own: it is the one stopped, never the shared one.
    redis = await spawnRedisServer();
    stack = await startStack({
      redisUrl: redis.url,
      api: { REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) },
      sim: { ttftMs: 1, itlMs: 1 },
    });
  });
  afterAll(async () => {
    redis?.resume();
    await stack?.close();
    await redis?.stop();
  });

  const timed = async (path: string, init: RequestInit = {}) => {
    const started = Date.now();
    const res = await stack.fetch(path, init);
    const body = await res.text();
    return { res, body, ms: Date.now() - started };
  };
  const post = (path: string) => timed(path, { method: 'POST', body: JSON.stringify(hi) });

  it('503 service_unavailable with Retry-After within the timeout, then served again after SIGCONT', async () => {
    expect((await post('/chat')).res.status).toBe(200);

    redis.pause();
    try {
      // At once (the key is still in the api's 500 ms cache: the rate limiter's call hangs), and
      // after the cache expired (the key lookup hangs).
      const first = await Promise.all([post('/chat'), post('/v1/chat/completions'), timed('/v1/models')]);
      await new Promise((r) => setTimeout(r, 600));
      const later = await Promise.all([post('/chat'), post('/v1/chat/completions')]);
      for (const { res, body, ms } of [...first, ...later]) {
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(body).toContain('service_unavailable');
        // Answered by the timeout, well before the stop ends (the test resumes Redis after ~2 s).
        expect(ms).toBeLessThan(3000);
      }
      const seed = JSON.parse(later[0]!.body) as { error: string };
      expect(seed.error).toBe('service_unavailable');
      const openai = JSON.parse(later[1]!.body) as { error: { code: string } };
      expect(openai.error.code).toBe('service_unavailable');
    } finally {
      redis.resume();
    }

    await expect
      .poll(async () => (await post('/chat')).res.status, { timeout: 10_000, interval: 200 })
      .toBe(200);
    expect((await post('/v1/chat/completions')).res.status).toBe(200);
  });
});
