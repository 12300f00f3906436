import { DEFAULT_MODEL } from '@llmgw/config';
import { freePort, until } from '@llmgw/devkit';
import { type Simulator, startSimulator } from '@llmgw/sim';
import { afterEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { directTokens, seedTokens } from '../support/direct.ts';
import { alwaysFailing, closedPort, runStreams } from './failover-scenario.ts';

const healthOf = async (stack: Stack, i: number) => {
  const res = await fetch(`http://127.0.0.1:${stack.workers[i]!.metricsPort}/health`);
  return (await res.json()) as { breakers: Record<string, { state: string; reason: string }> };
};

/**
 * One model, two workers: one healthy, one whose backend is dead or answers 500 to everything.
 * Before failover, 62 (closed port) and 56 (HTTP 500) of 200 streams succeeded; the broken
 * worker failed a job in milliseconds and took the next one.
 */
describe('trust no backend: retry before the first token, circuit breaker', () => {
  let stack: Stack | undefined;
  const extra: Simulator[] = [];
  afterEach(async () => {
    await stack?.close();
    await Promise.all(extra.splice(0).map((s) => s.close()));
  });

  it.each(['closed port', 'HTTP 500'] as const)(
    '%s: 200 of 200 streams complete; the broken worker opens its breaker and says why',
    async (variant) => {
      stack = await startStack({ sim: { ttftMs: 5, itlMs: 5 } });
      const bad = variant === 'HTTP 500' ? await alwaysFailing() : undefined;
      if (bad) extra.push(bad);
      await stack.startWorker({ LLM_BASE_URL: bad ? `${bad.url}/v1` : await closedPort() });
      const result = await runStreams(stack, 200, 20);
      expect(result).toEqual({ ok: 200, failed: {} });

      const broken = await healthOf(stack, 1);
      expect(broken.breakers[DEFAULT_MODEL]?.state).toMatch(/open/);
      expect(broken.breakers[DEFAULT_MODEL]?.reason).toMatch(
        variant === 'HTTP 500' ? /consecutive backend failures/ : /./,
      );
      const metrics = await (await fetch(`http://127.0.0.1:${stack.workers[1]!.metricsPort}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`llm_breaker_open\\{model="${DEFAULT_MODEL}"\\} 1`));
      expect(metrics).toMatch(new RegExp(`llm_worker_slots\\{model="${DEFAULT_MODEL}"\\} 0`));
      const health = (await (await stack.fetch('/health')).json()) as {
        checks: { models: Record<string, { workers: { breaker?: { reason: string } }[] }> };
      };
      expect(health.checks.models[DEFAULT_MODEL]!.workers.some((w) => w.breaker?.reason)).toBe(true);
      if (variant === 'HTTP 500') {
        expect(metrics).toMatch(
          /llm_backend_retries_total\{model="sim-llama-3-8b",error_type="backend_error"\} [1-9]/,
        );
      }
    },
    60_000,
  );

  it('half-open probes with a real completion and closes once the backend answers again', async () => {
    const port = await freePort();
    const bad = await startSimulator({
      port,
      ttftMs: 1,
      itlMs: 1,
      failureRate: 1,
      failureTypes: ['server_error'],
    });
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 5 },
      workers: [
        {
          LLM_BASE_URL: `http://127.0.0.1:${port}/v1`,
          BREAKER_COOLDOWN_MS: '200',
          BREAKER_MAX_COOLDOWN_MS: '400',
        },
      ],
    });
    for (let i = 0; i < 3; i++)
      await stack.chat({ messages: [{ role: 'user', content: `x${i}` }], max_tokens: 2 }, { timeoutMs: 300 });
    expect(await until(async () => Boolean((await healthOf(stack!, 0)).breakers[DEFAULT_MODEL]), 5000)).toBe(
      true,
    );
    await bad.close();
    const good = await startSimulator({ port, ttftMs: 1, itlMs: 1 });
    extra.push(good);
    expect(await until(async () => !(await healthOf(stack!, 0)).breakers[DEFAULT_MODEL], 5000)).toBe(true);
    expect(stack.logs.find('breaker_closed')).toHaveLength(1);
    // The probe was a real one-token completion, not /health.
    expect(good.requests().some((r) => (r.body as { max_tokens?: number }).max_tokens === 1)).toBe(true);
    const res = await stack.chat({ messages: [{ role: 'user', content: 'back?' }], max_tokens: 4 });
    expect(seedTokens(res.data)).toHaveLength(4);
  }, 30_000);

  it('after the first token a failure is an error frame, never a retry with duplicated text', async () => {
    // The drop fault cuts the stream after 1 to 5 tokens (a cut before any token reached the
    // worker is retried, as it should be; every try is cut again).
    stack = await startStack({
      sim: { ttftMs: 2, itlMs: 5, failureRate: 1, failureTypes: ['drop'] },
      // Every request fails here: keep the breaker out of it, this is about one stream.
      workers: [{ BREAKER_FAILURES: '1000' }],
    });
    const healthy = await startSimulator({ port: 0 });
    extra.push(healthy);
    const body = { messages: [{ role: 'user', content: 'cut me off' }], max_tokens: 200 };
    const full = (await directTokens(healthy.url, DEFAULT_MODEL, body)).join('');
    for (let i = 0; i < 5; i++) {
      const res = await stack.chat(body);
      const last = JSON.parse(res.data.at(-1)!) as { error?: { type: string } };
      expect(last.error?.type).toMatch(/^backend_/);
      const text = res.data
        .slice(0, -1)
        .map((d) => (JSON.parse(d) as { token: string }).token)
        .join('');
      // Whatever reached the client is the start of the one answer, never a part of it twice.
      expect(full.startsWith(text)).toBe(true);
    }
  });
});

describe('scale to zero', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('SCALE_TO_ZERO: the request comes first, a worker starts 3 s later, the request completes', async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 2 },
      api: { SCALE_TO_ZERO: '1', MODELS: DEFAULT_MODEL },
      workers: [],
    });
    const pending = stack.chat({ messages: [{ role: 'user', content: 'wake up' }], max_tokens: 5 });
    await new Promise((r) => setTimeout(r, 3000));
    await stack.startWorker();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(seedTokens(res.data)).toHaveLength(5);
  }, 20_000);

  it('without SCALE_TO_ZERO a model with no live worker is 503 model_unavailable at once', async () => {
    stack = await startStack({ sim: { ttftMs: 5, itlMs: 2 }, api: { MODELS: DEFAULT_MODEL }, workers: [] });
    const res = await stack.chat({ messages: [{ role: 'user', content: 'anyone?' }], max_tokens: 5 });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'model_unavailable' });
  });
});

describe('BACKEND_PRIORITY', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it("passes the tier's priority as vLLM's priority field only when set", async () => {
    stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 }, workers: [{ BACKEND_PRIORITY: '1' }, {}] });
    await stack.workers[1]!.close();
    await stack.chat({ messages: [{ role: 'user', content: 'first class' }], max_tokens: 2 });
    expect(stack.sim!.requests().at(-1)!.body).toMatchObject({ priority: 1 });
  });
});
