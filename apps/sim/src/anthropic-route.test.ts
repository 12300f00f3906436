import { Anthropic, NotFoundError, RateLimitError } from '@anthropic-ai/sdk';
import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { post, readSse } from './test-helpers.ts';

describe('POST /v1/messages', () => {
  let sim: Simulator;
  let client: Anthropic;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 2 });
    client = new Anthropic({ baseURL: sim.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => sim.close());

  const params = {
    model: DEFAULT_MODEL,
    max_tokens: 8,
    system: 'You are terse.',
    messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
  };

  it('streams events the SDK accumulates into a Message', async () => {
    const stream = client.messages.stream(params);
    let streamed = '';
    stream.on('text', (delta) => {
      streamed += delta;
    });
    const message = await stream.finalMessage();
    expect(message.id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(message.role).toBe('assistant');
    expect(message.model).toBe(DEFAULT_MODEL);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(8);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    const block = message.content[0];
    expect(block?.type).toBe('text');
    expect(block?.type === 'text' && block.text).toBe(streamed);
    expect(streamed.split(' ')).toHaveLength(8);
  });

  it('sends every event with event: and data: lines, in Anthropic order', async () => {
    const res = await post(`${sim.url}/v1/messages`, { ...params, max_tokens: 2, stream: true });
    const { events, error } = await readSse(res);
    expect(error).toBeUndefined();
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    for (const e of events) expect(JSON.parse(e.data)).toMatchObject({ type: e.event });
  });

  it('returns a Message without streaming; same prompt, same text', async () => {
    const a = await client.messages.create(params);
    const b = await client.messages.create(params);
    expect(a.type).toBe('message');
    expect(a.content).toEqual(b.content);
    expect(a.stop_reason).toBe('max_tokens');
    expect(a.usage.output_tokens).toBe(8);
  });

  it('ends at a stop sequence with stop_reason stop_sequence', async () => {
    const full = await client.messages.create({ ...params, max_tokens: 30 });
    const text = full.content[0]?.type === 'text' ? full.content[0].text : '';
    const stop = ` ${text.split(' ')[5]}`;
    const expected = text.slice(0, text.indexOf(stop));

    const created = await client.messages.create({ ...params, max_tokens: 30, stop_sequences: [stop] });
    expect(created.stop_reason).toBe('stop_sequence');
    expect(created.stop_sequence).toBe(stop);
    expect(created.content[0]).toMatchObject({ type: 'text', text: expected });

    const streamed = await client.messages
      .stream({ ...params, max_tokens: 30, stop_sequences: [stop] })
      .finalMessage();
    expect(streamed.stop_reason).toBe('stop_sequence');
    expect(streamed.content[0]).toMatchObject({ type: 'text', text: expected });
  });

  it('renders errors in Anthropic shape', async () => {
    await expect(client.messages.create({ ...params, model: 'nope' })).rejects.toBeInstanceOf(NotFoundError);
    const res = await post(`${sim.url}/v1/messages`, { model: DEFAULT_MODEL, messages: params.messages });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    await expect(
      client.messages.create(params, { headers: { 'X-Sim-Error': 'rate_limit' } }),
    ).rejects.toBeInstanceOf(RateLimitError);
  });
});
