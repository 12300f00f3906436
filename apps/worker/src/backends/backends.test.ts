import { DEFAULT_MODEL } from '@llmgw/config';
import { type FaultType, type Simulator, startSimulator } from '@llmgw/sim';
import { afterEach, describe, expect, it } from 'vitest';
import { createAnthropicBackend } from './anthropic.ts';
import type { Backend, GenerateHooks } from './backend.ts';
import { BackendError } from './backend.ts';
import { createOpenAIBackend } from './openai.ts';

const req = {
  kind: 'chat' as const,
  model: DEFAULT_MODEL,
  messages: [{ role: 'user' as const, content: 'hello' }],
  params: { max_tokens: 8 },
};

/** Hooks that collect nothing, for requests whose answer does not matter. */
const quiet = (signal = new AbortController().signal): GenerateHooks => ({
  signal,
  onDelta: () => {},
  onDropped: () => {},
});

const backends: Record<string, (sim: Simulator, timeoutMs?: number) => Backend> = {
  openai: (sim, timeoutMs = 5000) => createOpenAIBackend({ baseURL: `${sim.url}/v1`, timeoutMs }),
  anthropic: (sim, timeoutMs = 5000) => createAnthropicBackend({ baseURL: sim.url, timeoutMs }),
};

describe.each(Object.keys(backends))('%s backend', (name) => {
  let sim: Simulator | undefined;
  afterEach(() => sim?.close());
  const make = backends[name]!;

  async function failWith(fault: FaultType, timeoutMs?: number): Promise<BackendError> {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1, failureRate: 1, failureTypes: [fault] });
    const err = await make(sim, timeoutMs)
      .generate(req, quiet())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    return err as BackendError;
  }

  it('streams tokens and reports usage and finish reason', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1 });
    const tokens: string[] = [];
    const res = await make(sim).generate(req, {
      ...quiet(),
      onDelta: (d) => (d.k === 'text' ? tokens.push(d.t) : undefined),
    });
    expect(tokens).toHaveLength(8);
    expect(res.finishReason).toBe('length');
    expect(res.usage.completionTokens).toBe(8);
    expect(res.usage.promptTokens).toBeGreaterThan(0);
  });

  it('an upstream 429 becomes backend_rate_limited after exactly one request (no retry storm)', async () => {
    const err = await failWith('rate_limit');
    expect(err.type).toBe('backend_rate_limited');
    expect(err.status).toBe(429);
    expect(sim!.stats().requests).toBe(1);
  });

  it('500 → backend_error, 400 → backend_bad_request, no answer → backend_timeout', async () => {
    expect((await failWith('server_error')).type).toBe('backend_error');
    await sim?.close();
    expect((await failWith('bad_request')).type).toBe('backend_bad_request');
    await sim?.close();
    expect((await failWith('timeout', 300)).type).toBe('backend_timeout');
  });

  it('a connection dropped mid-stream is an error with what was generated so far', async () => {
    const err = await failWith('drop');
    expect(['backend_error', 'backend_unavailable']).toContain(err.type);
    expect(err.partialUsage?.completionTokens).toBeGreaterThanOrEqual(0);
  });

  it('a closed port → backend_unavailable', async () => {
    sim = await startSimulator({ port: 0 });
    const backend = make(sim);
    await sim.close();
    const err = await backend.generate(req, quiet()).catch((e: unknown) => e);
    expect((err as BackendError).type).toBe('backend_unavailable');
  });

  it('an aborted signal → cancelled, and the backend sees the abort', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 20 });
    const ac = new AbortController();
    let n = 0;
    const err = await make(sim)
      .generate(
        { ...req, params: { max_tokens: 200 } },
        { ...quiet(ac.signal), onDelta: () => (++n === 3 ? ac.abort('test') : undefined) },
      )
      .catch((e: unknown) => e);
    expect((err as BackendError).type).toBe('cancelled');
    const deadline = Date.now() + 5000;
    while (sim.stats().aborted === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sim.stats().aborted).toBe(1);
  });
});

describe('openai backend with continuous usage (BACKEND_CONTINUOUS_USAGE)', () => {
  let sim: Simulator | undefined;
  afterEach(() => sim?.close());

  it("a generation cut short is charged the backend's own counts, not a guess", async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 20 });
    const cut = async (continuousUsage: boolean) => {
      const ac = new AbortController();
      let n = 0;
      const backend = createOpenAIBackend({ baseURL: `${sim!.url}/v1`, timeoutMs: 5000, continuousUsage });
      return (await backend
        .generate(
          { ...req, params: { max_tokens: 200 } },
          { ...quiet(ac.signal), onDelta: () => (++n === 3 ? ac.abort('test') : undefined) },
        )
        .catch((e: unknown) => e)) as BackendError;
    };
    const whole = await createOpenAIBackend({ baseURL: `${sim.url}/v1`, timeoutMs: 5000 }).generate(
      req,
      quiet(),
    );
    const counted = await cut(true);
    expect(counted.type).toBe('cancelled');
    expect(counted.partialUsage).toEqual({ promptTokens: whole.usage.promptTokens, completionTokens: 3 });
    // Without it an OpenAI-compatible stream says nothing of the prompt until its end.
    expect((await cut(false)).partialUsage).toEqual({ promptTokens: 0, completionTokens: 3 });
    const sent = sim.requests().at(-2)?.body as { stream_options: unknown };
    expect(sent.stream_options).toEqual({ include_usage: true, continuous_usage_stats: true });
  });
});
