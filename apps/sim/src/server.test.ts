import { DEFAULT_MODEL } from '@llmgw/config';
import { afterEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { post, readSse, waitFor } from './test-helpers.ts';

const longStream = {
  model: DEFAULT_MODEL,
  messages: [{ role: 'user', content: 'go on' }],
  max_tokens: 2000,
  ignore_eos: true,
  stream: true,
};

describe('client disconnects and shutdown', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it('stops a stream whose client goes away and frees its slot', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 10 });
    const s = sim;
    const controller = new AbortController();
    const res = await post(`${s.url}/v1/chat/completions`, longStream, {}, controller.signal);
    let seen = 0;
    await readSse(res, () => ++seen === 4);
    controller.abort();
    await waitFor('abort counted', () => s.stats().aborted === 1 && s.stats().running === 0);
    expect(s.stats().completed).toBe(0);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/^sim_requests_aborted_total\{model_name="sim-llama-3-8b"\} 1$/m);
  });

  it('removes a waiting request whose client goes away from the queue', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 10, maxNumSeqs: 1 });
    const s = sim;
    const url = `${s.url}/v1/chat/completions`;
    const first = new AbortController();
    const second = new AbortController();
    await post(url, longStream, {}, first.signal);
    const waiting = await post(url, longStream, {}, second.signal);
    expect(waiting.status).toBe(200);
    await waitFor('one waiting', () => s.stats().waiting === 1);
    second.abort();
    await waitFor('waiter removed', () => s.stats().waiting === 0 && s.stats().aborted === 1);
    expect(s.stats().running).toBe(1);
    first.abort();
    await waitFor('slot freed', () => s.stats().running === 0 && s.stats().aborted === 2);
  });

  it('close() cuts open streams, is idempotent, and stats reset works', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 10 });
    const s = sim;
    const res = await post(`${s.url}/v1/chat/completions`, longStream);
    const reading = readSse(res);
    await waitFor('running', () => s.stats().running === 1);

    const reset = await fetch(`${s.url}/sim/stats/reset`, { method: 'POST' });
    expect(await reset.json()).toMatchObject({ requests: 0, running: 1, peak_running: 1 });

    await Promise.all([s.close(), s.close()]);
    const read = await reading;
    expect(read.events.at(-1)?.data).not.toBe('[DONE]');
    expect(s.stats().running).toBe(0);
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });
});
