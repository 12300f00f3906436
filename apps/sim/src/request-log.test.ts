import { DEFAULT_MODEL } from '@llmgw/config';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REQUEST_LOG_SIZE, RequestLog } from './request-log.ts';
import { type Simulator, startSimulator } from './server.ts';
import { post } from './test-helpers.ts';

describe('request log', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1, outputTokens: 2 });
  });
  afterAll(() => sim.close());
  beforeEach(async () => {
    expect((await fetch(`${sim.url}/sim/requests/reset`, { method: 'POST' })).status).toBe(200);
  });

  const logged = async () => {
    const res = await fetch(`${sim.url}/sim/requests`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { requests: { path: string; body: unknown }[] }).requests;
  };

  it('keeps each generation body as received, oldest first, unknown fields and failures included', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const secondTurn = {
      model: DEFAULT_MODEL,
      messages: [
        { role: 'user' as const, content: 'Weather?' },
        {
          role: 'assistant' as const,
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function' as const,
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: 'tool' as const, tool_call_id: 'call_1', content: 'sunny' },
      ],
    };
    await client.chat.completions.create(secondTurn);
    await post(`${sim.url}/v1/completions`, { model: DEFAULT_MODEL, prompt: 'hi', custom_field: [1, 2] });
    await post(`${sim.url}/v1/messages`, { model: DEFAULT_MODEL, messages: [] });
    await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', body: '{broken' });

    const requests = await logged();
    expect(requests).toEqual([
      { path: '/v1/chat/completions', body: secondTurn },
      { path: '/v1/completions', body: { model: DEFAULT_MODEL, prompt: 'hi', custom_field: [1, 2] } },
      // Rejected by validation (no max_tokens, empty messages), still logged.
      { path: '/v1/messages', body: { model: DEFAULT_MODEL, messages: [] } },
    ]);
    expect(sim.requests()).toEqual(requests);
  });

  it('is emptied by /sim/requests/reset and /sim/stats/reset, and skips non-generation routes', async () => {
    await post(`${sim.url}/v1/completions`, { model: DEFAULT_MODEL, prompt: 'a' });
    await fetch(`${sim.url}/sim/stats/reset`, { method: 'POST' });
    await fetch(`${sim.url}/v1/models`);
    expect(await logged()).toEqual([]);
    await post(`${sim.url}/v1/completions`, { model: DEFAULT_MODEL, prompt: 'b' });
    expect(sim.requests()).toHaveLength(1);
    const reset = await fetch(`${sim.url}/sim/requests/reset`, { method: 'POST' });
    expect(await reset.json()).toEqual({ requests: [] });
    expect(sim.requests()).toEqual([]);
  });

  it(`keeps the last ${REQUEST_LOG_SIZE}`, () => {
    const log = new RequestLog();
    for (let i = 0; i < REQUEST_LOG_SIZE + 5; i++) log.record('/p', { i });
    const list = log.list();
    expect(list).toHaveLength(REQUEST_LOG_SIZE);
    expect(list[0]).toEqual({ path: '/p', body: { i: 5 } });
    expect(list.at(-1)).toEqual({ path: '/p', body: { i: REQUEST_LOG_SIZE + 4 } });
    list.pop();
    expect(log.list()).toHaveLength(REQUEST_LOG_SIZE);
  });
});
