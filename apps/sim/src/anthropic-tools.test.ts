import { Anthropic, BadRequestError } from '@anthropic-ai/sdk';
import type { MessageParam, Tool } from '@anthropic-ai/sdk/resources/messages';
import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { post, readSse } from './test-helpers.ts';

const REASONER = 'claude-sim-reasoner';

const weather: Tool = {
  name: 'get_weather',
  description: 'Current weather',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city'],
  },
};
const time: Tool = {
  name: 'get_time',
  input_schema: { type: 'object', properties: { zone: { type: 'string' } } },
};

const ask: MessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];

describe('tool_use and thinking on /v1/messages', () => {
  let sim: Simulator;
  let client: Anthropic;

  beforeAll(async () => {
    sim = await startSimulator({
      port: 0,
      ttftMs: 2,
      itlMs: 1,
      models: [DEFAULT_MODEL, REASONER],
      reasoningTokens: 4,
    });
    client = new Anthropic({ baseURL: sim.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => sim.close());

  const events = async (body: Record<string, unknown>) => {
    const res = await post(`${sim.url}/v1/messages`, {
      model: DEFAULT_MODEL,
      max_tokens: 200,
      stream: true,
      ...body,
    });
    const read = await readSse(res);
    expect(read.error).toBeUndefined();
    return read.events.map((e) => ({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown> }));
  };

  it('streams a tool_use block the SDK assembles into the expected input', async () => {
    const stream = client.messages.stream({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather],
    });
    const partials: string[] = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toHaveLength(1);
    const block = message.content[0]!;
    if (block.type !== 'tool_use') throw new Error(`expected tool_use, got ${block.type}`);
    expect(block.id).toMatch(/^toolu_[0-9a-f]{32}$/);
    expect(block.name).toBe('get_weather');
    expect(block.input).toEqual({ city: expect.stringMatching(/^[a-z]+$/), unit: 'celsius' });
    expect(partials.filter((p) => p !== '').join('')).toBe(JSON.stringify(block.input));
    expect(message.usage.output_tokens).toBe(partials.filter((p) => p !== '').length);

    const created = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather],
    });
    expect(created.stop_reason).toBe('tool_use');
    expect(created.content).toEqual([
      { type: 'tool_use', id: expect.any(String), name: 'get_weather', input: block.input },
    ]);
  });

  it('sends Anthropic tool_use events: block start with input {}, an empty then partial JSON deltas, stop', async () => {
    const list = await events({ messages: ask, tools: [weather] });
    expect(list.slice(0, 4).map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
    ]);
    expect(list[1]!.data).toEqual({
      type: 'content_block_start',
      index: 0,
      content_block: {
        type: 'tool_use',
        id: expect.stringMatching(/^toolu_/),
        name: 'get_weather',
        input: {},
      },
    });
    const deltas = list.filter((e) => e.event === 'content_block_delta').map((e) => e.data);
    expect(deltas[0]).toEqual({
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'input_json_delta', partial_json: '' },
    });
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    const json = deltas.map((d) => (d.delta as { partial_json: string }).partial_json).join('');
    expect(JSON.parse(json)).toHaveProperty('unit', 'celsius');
    expect(list.slice(-3).map((e) => e.event)).toEqual([
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(list.at(-2)!.data).toMatchObject({ delta: { stop_reason: 'tool_use', stop_sequence: null } });
  });

  it('uses two tools for tool_choice any, one with disable_parallel_tool_use, the named one for tool', async () => {
    const two = await client.messages
      .stream({
        model: DEFAULT_MODEL,
        max_tokens: 200,
        messages: ask,
        tools: [weather, time],
        tool_choice: { type: 'any' },
      })
      .finalMessage();
    expect(two.content.map((b) => b.type === 'tool_use' && b.name)).toEqual(['get_weather', 'get_time']);
    const ids = two.content.map((b) => (b.type === 'tool_use' ? b.id : ''));
    expect(new Set(ids).size).toBe(2);

    const one = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather, time],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    });
    expect(one.content).toHaveLength(1);
    const auto = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather, time],
    });
    expect(auto.content).toHaveLength(1);

    const named = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather, time],
      tool_choice: { type: 'tool', name: 'get_time' },
    });
    expect(named.content).toMatchObject([
      { type: 'tool_use', name: 'get_time', input: { zone: expect.any(String) } },
    ]);
    await expect(
      client.messages.create({
        model: DEFAULT_MODEL,
        max_tokens: 200,
        messages: ask,
        tools: [weather],
        tool_choice: { type: 'tool', name: 'nope' },
      }),
    ).rejects.toBeInstanceOf(BadRequestError);
  });

  it('answers a tool_result turn (and tool_choice none) in text', async () => {
    const first = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 200,
      messages: ask,
      tools: [weather],
    });
    const use = first.content[0]!;
    if (use.type !== 'tool_use') throw new Error('expected tool_use');
    const turn = (result: string): MessageParam[] => [
      ...ask,
      { role: 'assistant', content: [use] },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: result }] }],
      },
    ];
    const answer = await client.messages
      .stream({ model: DEFAULT_MODEL, max_tokens: 6, messages: turn('18 degrees'), tools: [weather] })
      .finalMessage();
    expect(answer.stop_reason).toBe('max_tokens');
    expect(answer.content).toHaveLength(1);
    const text = answer.content[0]!.type === 'text' ? answer.content[0]!.text : '';
    expect(text.split(' ')).toHaveLength(6);
    const other = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 6,
      messages: turn('25 degrees'),
    });
    expect(other.content[0]).toMatchObject({ type: 'text' });
    expect(other.content[0]!.type === 'text' && other.content[0]!.text).not.toBe(text);

    const none = await client.messages.create({
      model: DEFAULT_MODEL,
      max_tokens: 3,
      messages: ask,
      tools: [weather],
      tool_choice: { type: 'none' },
    });
    expect(none.content).toMatchObject([{ type: 'text' }]);
    expect(none.stop_reason).toBe('max_tokens');
  });

  it('streams a thinking block first (deltas, signature), then the text block at index 1', async () => {
    const list = await events({
      messages: ask,
      max_tokens: 7,
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
    expect(
      list.map((e) => `${e.event}:${(e.data.delta as { type?: string } | undefined)?.type ?? ''}`),
    ).toEqual([
      'message_start:',
      'content_block_start:',
      'ping:',
      ...Array(4).fill('content_block_delta:thinking_delta'),
      'content_block_delta:signature_delta',
      'content_block_stop:',
      'content_block_start:',
      ...Array(3).fill('content_block_delta:text_delta'),
      'content_block_stop:',
      'message_delta:',
      'message_stop:',
    ]);
    expect(list[1]!.data).toEqual({
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'thinking', thinking: '', signature: '' },
    });
    expect(list[8]!.data).toEqual({ type: 'content_block_stop', index: 0 });
    expect(list[9]!.data).toEqual({
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'text', text: '' },
    });
    for (const e of list.slice(10, 13)) expect(e.data.index).toBe(1);
    expect(list.at(-2)!.data).toMatchObject({
      delta: { stop_reason: 'max_tokens' },
      usage: { output_tokens: 7 },
    });
  });

  it('assembles thinking + text with the SDK; the same blocks without streaming; signature deterministic', async () => {
    const params = { model: REASONER, max_tokens: 10, messages: ask };
    const streamed = await client.messages.stream(params).finalMessage();
    expect(streamed.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    const thinking = streamed.content[0]!;
    if (thinking.type !== 'thinking') throw new Error('expected thinking');
    expect(thinking.thinking.split(' ')).toHaveLength(4);
    expect(thinking.signature).toMatch(/^[A-Za-z0-9+/]{20,}={0,2}$/);
    expect(streamed.content[1]!.type === 'text' && streamed.content[1]!.text.split(' ')).toHaveLength(6);

    const created = await client.messages.create(params);
    expect(created.content).toEqual(streamed.content);
    expect(created.usage.output_tokens).toBe(10);

    const tooShort = await client.messages.create({ ...params, max_tokens: 2 });
    expect(tooShort.content.map((b) => b.type)).toEqual(['thinking']);
    expect(tooShort.stop_reason).toBe('max_tokens');
  });

  it('thinks before tool_use: thinking at index 0, tool_use at 1', async () => {
    const list = await events({ model: REASONER, messages: ask, tools: [weather] });
    const starts = list.filter((e) => e.event === 'content_block_start').map((e) => e.data);
    expect(starts).toMatchObject([
      { index: 0, content_block: { type: 'thinking' } },
      { index: 1, content_block: { type: 'tool_use', name: 'get_weather' } },
    ]);
    const message = await client.messages
      .stream({ model: REASONER, max_tokens: 200, messages: ask, tools: [weather] })
      .finalMessage();
    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    expect(message.stop_reason).toBe('tool_use');
  });

  it('accepts images, tool blocks, thinking blocks, metadata and sampling; images count 256 tokens', async () => {
    const base = { model: DEFAULT_MODEL, max_tokens: 4 };
    const text = { type: 'text' as const, text: 'abcd' };
    const plain = await client.messages.create({ ...base, messages: [{ role: 'user', content: [text] }] });
    expect(plain.usage.input_tokens).toBe(1 + 3);
    const image = (data: string) => ({
      type: 'image' as const,
      source: { type: 'base64' as const, media_type: 'image/png' as const, data },
    });
    const a = await client.messages.create({
      ...base,
      messages: [{ role: 'user', content: [text, image('AAAA')] }],
    });
    const b = await client.messages.create({
      ...base,
      messages: [{ role: 'user', content: [text, image('BBBB')] }],
    });
    expect(a.usage.input_tokens).toBe(plain.usage.input_tokens + 256);
    expect(a.content).not.toEqual(b.content);
    const url = await client.messages.create({
      ...base,
      messages: [
        { role: 'user', content: [text, { type: 'image', source: { type: 'url', url: 'https://x/c.png' } }] },
      ],
    });
    expect(url.usage.input_tokens).toBe(a.usage.input_tokens);

    // Raw JSON: the SDK's types no longer list every field a client may still send.
    const res = await post(`${sim.url}/v1/messages`, {
      model: DEFAULT_MODEL,
      max_tokens: 4,
      system: [{ type: 'text', text: 'Be brief.' }],
      metadata: { user_id: 'u1' },
      temperature: 0.2,
      top_p: 0.9,
      top_k: 5,
      thinking: { type: 'disabled' },
      tools: [weather],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'hmm', signature: 'c2ln' },
            { type: 'redacted_thinking', data: 'xyz' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny', is_error: false }],
        },
      ],
    });
    expect(res.status).toBe(200);
    const full = (await res.json()) as { content: { type: string }[]; stop_reason: string };
    expect(full.content).toMatchObject([{ type: 'text' }]);
    expect(full.stop_reason).toBe('max_tokens');
  });

  it('refuses a tool loop with thinking on whose last assistant turn does not start with its signed thinking, as Anthropic does', async () => {
    const thinking = { type: 'enabled' as const, budget_tokens: 1024 };
    const first = await client.messages.create({
      model: REASONER,
      max_tokens: 200,
      thinking,
      messages: ask,
      tools: [weather],
    });
    expect(first.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    const [thought, use] = first.content;
    if (thought?.type !== 'thinking' || use?.type !== 'tool_use')
      throw new Error('expected thinking, tool_use');
    const loop = (assistant: Anthropic.ContentBlockParam[]) =>
      client.messages.create({
        model: REASONER,
        max_tokens: 8,
        thinking,
        tools: [weather],
        messages: [
          ...ask,
          { role: 'assistant', content: assistant },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 °C' }] },
        ],
      });
    const refusal = (assistant: Anthropic.ContentBlockParam[]) =>
      loop(assistant).then(
        () => undefined,
        (e: unknown) => e as BadRequestError,
      );

    // The whole turn back, its thinking first and unchanged: answered.
    const second = await loop(first.content);
    expect(second.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    // A redacted block first is a thinking block too.
    await loop([{ type: 'redacted_thinking', data: 'opaque' }, use]);

    const dropped = await refusal([use]);
    expect(dropped).toBeInstanceOf(BadRequestError);
    expect(dropped?.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(dropped?.message).toContain(
      'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block',
    );
    const late = await refusal([{ type: 'text', text: 'Checking.' }, thought, use]);
    expect(late?.message).toContain('but found `text`');
    for (const signature of ['', 'Zm9yZ2Vk']) {
      const forged = await refusal([{ ...thought, signature }, use]);
      expect(forged?.message).toContain('messages.1.content.0: Invalid `signature` in `thinking` block');
    }
    const altered = await refusal([{ ...thought, thinking: `${thought.thinking} more` }, use]);
    expect(altered?.message).toContain('Invalid `signature`');

    // Thinking off (absent or disabled): a turn without its thinking is fine, as at Anthropic.
    for (const off of [{}, { thinking: { type: 'disabled' as const } }]) {
      const plain = await client.messages.create({
        model: REASONER,
        max_tokens: 8,
        tools: [weather],
        ...off,
        messages: [
          ...ask,
          { role: 'assistant', content: [use] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 °C' }] },
        ],
      });
      expect(plain.content.at(-1)?.type).toBe('text');
    }
    // A last assistant turn without tool_use (a finished answer, then a new question) is not checked.
    const next = await client.messages.create({
      model: REASONER,
      max_tokens: 8,
      thinking,
      messages: [...ask, { role: 'assistant', content: 'Sunny.' }, { role: 'user', content: 'And Rome?' }],
    });
    expect(next.content[0]?.type).toBe('thinking');
  });
});
