import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompatStack, REASONING_MODEL, startCompatStack, WEATHER_TOOL } from '../stack/compat.ts';

type Frame = { token?: string; reasoning?: string; tool_call?: Record<string, unknown> };

/** `/chat` (the seed's format) relays what is not text too: documented reasoning and tool_call frames. */
describe('POST /chat frames beyond text', () => {
  let stack: CompatStack;
  beforeAll(async () => {
    stack = await startCompatStack();
  });
  afterAll(() => stack?.close());

  const frames = (data: string[]) => {
    expect(data.at(-1)).toBe('[DONE]');
    return data.slice(0, -1).map((d) => JSON.parse(d) as Frame);
  };
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];

  it('a reasoning model: {"reasoning"} frames first, then {"token"} frames; stream:false has both fields', async () => {
    const body = { model: REASONING_MODEL, messages: ask, max_tokens: 20 };
    const got = frames((await stack.chat(body)).data);
    const kinds = got.map((f) => Object.keys(f)[0]);
    expect(kinds.indexOf('token')).toBeGreaterThan(kinds.lastIndexOf('reasoning'));
    expect(kinds.filter((k) => k !== 'reasoning' && k !== 'token')).toEqual([]);
    const res = await stack.fetch('/chat', {
      method: 'POST',
      body: JSON.stringify({ ...body, stream: false }),
    });
    const json = (await res.json()) as { content: string; reasoning: string };
    expect(json.reasoning).toBe(got.map((f) => f.reasoning ?? '').join(''));
    expect(json.content).toBe(got.map((f) => f.token ?? '').join(''));
  });

  it('tools: {"tool_call"} fragments in OpenAI shape, assembled in stream:false as tool_calls', async () => {
    const body = {
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [{ type: 'function', function: WEATHER_TOOL }],
    };
    const calls = frames((await stack.chat(body)).data).map((f) => f.tool_call);
    expect(calls.every((c) => c !== undefined)).toBe(true);
    expect(calls[0]).toMatchObject({
      index: 0,
      id: expect.any(String),
      type: 'function',
      function: { name: 'get_weather' },
    });
    const args = calls.map((c) => (c!.function as { arguments: string }).arguments).join('');
    expect(JSON.parse(args)).toMatchObject({ unit: 'celsius' });

    const res = await stack.fetch('/chat', {
      method: 'POST',
      body: JSON.stringify({ ...body, stream: false }),
    });
    const json = (await res.json()) as {
      finish_reason: string;
      tool_calls: { id: string; function: { arguments: string } }[];
    };
    expect(json.finish_reason).toBe('tool_calls');
    expect(json.tool_calls).toHaveLength(1);
    expect(JSON.parse(json.tool_calls[0]!.function.arguments)).toEqual(JSON.parse(args));
  });
});
