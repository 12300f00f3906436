import { DEFAULT_MODEL } from '@llmgw/config';
import { InternalServerError, OpenAI } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, post, readSse, waitFor } from './test-helpers.ts';

const body = { model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 };

describe('fault injection', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  const start = async (opts: Parameters<typeof startSimulator>[0] = {}) => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 2, ...opts });
    return { s: sim, url: `${sim.url}/v1/chat/completions` };
  };

  it('X-Sim-Error: server_error → 500, which the SDK raises as InternalServerError', async () => {
    const { s, url } = await start();
    const res = await post(url, body, { 'X-Sim-Error': 'server_error' });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { type: 'InternalServerError', code: 500 } });

    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    await expect(
      client.chat.completions.create(
        { model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'X-Sim-Error': 'server_error' } },
      ),
    ).rejects.toBeInstanceOf(InternalServerError);
    expect(s.stats().faults).toBe(2);
  });

  it('rate_limit → 429 with retry-after; bad_request → 400', async () => {
    const { url } = await start();
    const limited = await post(url, body, { 'X-Sim-Error': 'rate_limit' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    const bad = await post(url, body, { 'X-Sim-Error': 'bad_request' });
    expect(bad.status).toBe(400);
    const unknown = await post(url, body, { 'X-Sim-Error': 'meteor' });
    expect(unknown.status).toBe(400);
  });

  it('drop → the stream starts, then the connection is cut before [DONE]', async () => {
    const { s, url } = await start();
    const res = await post(url, { ...body, stream: true }, { 'X-Sim-Error': 'drop' });
    expect(res.status).toBe(200);
    const read = await readSse(res);
    expect(read.error).toBeDefined();
    expect(read.events.some((e) => e.data === '[DONE]')).toBe(false);
    const chunks = chunksOf(read);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.length).toBeLessThan(1 + 20);
    await waitFor('slot freed', () => s.stats().running === 0);
    expect(s.stats()).toMatchObject({ faults: 1, completed: 0 });
  });

  it('timeout → never answers; the client giving up counts as an abort', async () => {
    const { s, url } = await start();
    await expect(post(url, body, { 'X-Sim-Error': 'timeout' }, AbortSignal.timeout(200))).rejects.toThrow();
    await waitFor('abort counted', () => s.stats().aborted === 1);
    expect(s.stats().faults).toBe(1);
  });

  it('failure-rate 1 injects the configured types without a header', async () => {
    const { s, url } = await start({ failureRate: 1, failureTypes: ['rate_limit'] });
    for (let i = 0; i < 3; i++) expect((await post(url, body)).status).toBe(429);
    expect(s.stats().faults).toBe(3);
  });

  it('exposes vLLM metric names and fault counts on /metrics', async () => {
    const { s, url } = await start();
    expect((await post(url, body)).status).toBe(200);
    expect((await post(url, body, { 'X-Sim-Error': 'server_error' })).status).toBe(500);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:time_to_first_token_seconds_bucket',
      'vllm:inter_token_latency_seconds_bucket',
      'vllm:e2e_request_latency_seconds_bucket',
      'vllm:generation_tokens_total',
      'vllm:prompt_tokens_total',
    ]) {
      expect(text).toContain(`${name}{`);
    }
    expect(text).toMatch(/^vllm:generation_tokens_total\{model_name="sim-llama-3-8b"\} 20$/m);
    expect(text).toMatch(
      /^vllm:request_success_total\{model_name="sim-llama-3-8b",finished_reason="length"\} 1$/m,
    );
    expect(text).toMatch(/^sim_faults_injected_total\{type="server_error"\} 1$/m);
  });
});
