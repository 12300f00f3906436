import { DEFAULT_MODEL } from '@llmgw/config';
import { OpenAI } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, post, readSse } from './test-helpers.ts';

const weather: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer' },
      },
      required: ['city'],
    },
  },
};
const time: ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } },
};
const noArgs: ChatCompletionTool = { type: 'function', function: { name: 'ping' } };

const ask: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: string;
  function: { name?: string; arguments?: string };
}

describe('tool calls on /v1/chat/completions', () => {
  let sim: Simulator;
  let client: OpenAI;
  let url: string;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 2, itlMs: 1 });
    client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    url = `${sim.url}/v1/chat/completions`;
  });
  afterAll(() => sim.close());

  it('streams a tool call the SDK accumulates into valid arguments', async () => {
    const stream = client.chat.completions.stream({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather, time],
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    // The SDK also reports the header chunk, whose arguments are ''.
    stream.on('tool_calls.function.arguments.delta', (e) => {
      if (e.arguments_delta !== '') pieces.push(e.arguments_delta);
    });
    const completion = await stream.finalChatCompletion();
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!;
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^chatcmpl-tool-[0-9a-f]{32}$/);
    if (call.type !== 'function') throw new Error('not a function call');
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    expect(args).toEqual({
      city: expect.stringMatching(/^[a-z]+$/),
      unit: 'celsius',
      days: expect.any(Number),
    });
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    expect(pieces.join('')).toBe(call.function.arguments);
    // One generated token per piece.
    expect(completion.usage?.completion_tokens).toBe(pieces.length);

    // Same conversation and tools, same arguments, streamed or not.
    const again = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather, time],
    });
    const same = again.choices[0]!.message.tool_calls![0]!;
    expect(same.type === 'function' && same.function.arguments).toBe(call.function.arguments);
  });

  it('sends vLLM tool-call chunks: a header with name and empty arguments, then one piece per chunk', async () => {
    const res = await post(url, { model: DEFAULT_MODEL, messages: ask, tools: [weather], stream: true });
    const read = await readSse(res);
    expect(read.events.at(-1)?.data).toBe('[DONE]');
    const chunks = chunksOf(read);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    const deltas = chunks.slice(1, -1).map((c) => {
      const choice = c.choices[0]!;
      expect(choice.finish_reason).toBeNull();
      expect(choice.logprobs).toBeNull();
      return choice.delta as { tool_calls: ToolCallDelta[] };
    });
    const header = deltas[0]!.tool_calls;
    expect(header).toEqual([
      {
        index: 0,
        id: expect.stringMatching(/^chatcmpl-tool-[0-9a-f]{32}$/),
        type: 'function',
        function: { name: 'get_weather', arguments: '' },
      },
    ]);
    const pieces = deltas.slice(1).map((d) => {
      expect(Object.keys(d)).toEqual(['tool_calls']);
      expect(d.tool_calls).toHaveLength(1);
      expect(Object.keys(d.tool_calls[0]!)).toEqual(['index', 'function']);
      expect(d.tool_calls[0]!.index).toBe(0);
      return d.tool_calls[0]!.function.arguments!;
    });
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(10);
    expect(JSON.parse(pieces.join(''))).toHaveProperty('city');
    expect(chunks.at(-1)!.choices[0]).toMatchObject({ finish_reason: 'tool_calls', stop_reason: null });
  });

  it('calls the first two tools with parallel_tool_calls: true, indexes 0 and 1', async () => {
    const completion = await client.chat.completions
      .stream({
        model: DEFAULT_MODEL,
        messages: ask,
        tools: [weather, time, noArgs],
        parallel_tool_calls: true,
      })
      .finalChatCompletion();
    const calls = completion.choices[0]!.message.tool_calls!;
    expect(calls.map((c) => c.type === 'function' && c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const c of calls)
      if (c.type === 'function') expect(() => JSON.parse(c.function.arguments)).not.toThrow();

    const single = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather, time],
      parallel_tool_calls: false,
    });
    expect(single.choices[0]!.message.tool_calls).toHaveLength(1);
  });

  it('calls the tool named by tool_choice, even with parallel_tool_calls; {} without parameters', async () => {
    const named = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather, time, noArgs],
      tool_choice: { type: 'function', function: { name: 'ping' } },
      parallel_tool_calls: true,
    });
    const calls = named.choices[0]!.message.tool_calls!;
    expect(calls).toHaveLength(1);
    expect(calls[0]!.type === 'function' && calls[0]!.function).toEqual({ name: 'ping', arguments: '{}' });
    expect(named.choices[0]!.finish_reason).toBe('tool_calls');
    // '{}' is streamed in two pieces, two tokens.
    expect(named.usage?.completion_tokens).toBe(2);

    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather],
      tool_choice: { type: 'function', function: { name: 'nope' } },
    });
    expect(res.status).toBe(400);
  });

  it('answers in text with tool_choice none, without tools, and after a tool result', async () => {
    const none = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather],
      tool_choice: 'none',
      max_tokens: 5,
    });
    expect(none.choices[0]!.message.content?.split(' ')).toHaveLength(5);
    expect(none.choices[0]!.message.tool_calls).toEqual([]);

    const first = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather],
    });
    const call = first.choices[0]!.message.tool_calls![0]!;
    if (call.type !== 'function') throw new Error('not a function call');
    const turn = (result: string): ChatCompletionMessageParam[] => [
      ...ask,
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: result },
    ];
    const answer = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: turn('18 degrees'),
      tools: [weather],
      tool_choice: 'required',
      max_tokens: 6,
    });
    expect(answer.choices[0]!.finish_reason).toBe('length');
    expect(answer.choices[0]!.message.tool_calls).toEqual([]);
    const text = answer.choices[0]!.message.content!;
    expect(text.split(' ')).toHaveLength(6);
    // The tool result is part of the prompt: another result, another answer.
    const other = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: turn('25 degrees'),
      tools: [weather],
      max_tokens: 6,
    });
    expect(other.choices[0]!.message.content).not.toBe(text);
  });

  it('finishes with length when max_tokens runs out mid-arguments', async () => {
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather],
      max_tokens: 1,
      stream: true,
    });
    const chunks = chunksOf(await readSse(res));
    // Role, header, one piece, final.
    expect(chunks).toHaveLength(4);
    const piece = (chunks[2]!.choices[0]!.delta as { tool_calls: ToolCallDelta[] }).tool_calls[0]!;
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');

    const json = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      tools: [weather],
      max_tokens: 1,
    });
    expect(json.choices[0]!.finish_reason).toBe('length');
    expect(json.usage?.completion_tokens).toBe(1);
    const cut = json.choices[0]!.message.tool_calls![0]!;
    expect(cut.type === 'function' && cut.function.arguments).toBe(piece.function.arguments);
  });

  it('accepts the whole request surface: content parts, assistant tool_calls, tool messages, extras', async () => {
    const body = {
      model: DEFAULT_MODEL,
      messages: [
        { role: 'system', content: 'Be brief.', name: 'sys' },
        {
          role: 'user',
          name: 'alice',
          content: [
            { type: 'text', text: 'Look:' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
            { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'sunny' }] },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
        { role: 'user', content: 'Again?' },
      ],
      tools: [weather],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      response_format: { type: 'json_object' },
      logprobs: false,
      top_logprobs: 0,
      reasoning_effort: 'low',
      chat_template_kwargs: { enable_thinking: false },
      top_k: 40,
      min_p: 0.05,
      repetition_penalty: 1.1,
      priority: 1,
      temperature: 0.3,
      user: 'u1',
    };
    const res = await post(url, body);
    expect(res.status).toBe(200);
    const json = (await res.json()) as { choices: { finish_reason: string }[] };
    expect(json.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it('counts images, audio, tool calls and tool definitions in the prompt; images change the answer', async () => {
    const promptTokens = async (messages: unknown[], extra: Record<string, unknown> = {}) => {
      const res = await post(url, { model: DEFAULT_MODEL, messages, max_tokens: 8, ...extra });
      expect(res.status).toBe(200);
      const json = (await res.json()) as {
        usage: { prompt_tokens: number };
        choices: { message: { content: string } }[];
      };
      return { tokens: json.usage.prompt_tokens, text: json.choices[0]!.message.content };
    };
    const text = [{ type: 'text', text: 'abcd' }];
    const base = await promptTokens([{ role: 'user', content: text }]);
    expect(base.tokens).toBe(1 + 3);
    const image = (url: string) => ({ type: 'image_url', image_url: { url } });
    const one = await promptTokens([{ role: 'user', content: [...text, image('https://x/a.png')] }]);
    expect(one.tokens).toBe(base.tokens + 256);
    const other = await promptTokens([{ role: 'user', content: [...text, image('https://x/b.png')] }]);
    expect(other.tokens).toBe(one.tokens);
    expect(other.text).not.toBe(one.text);
    expect(one.text).not.toBe(base.text);
    const audio = await promptTokens([
      {
        role: 'user',
        content: [...text, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'mp3' } }],
      },
    ]);
    expect(audio.tokens).toBe(base.tokens + 128);

    // 16 characters of name + arguments = 4 tokens, plus a message of 3.
    const withCall = await promptTokens([
      { role: 'user', content: 'abcd' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"a":' } }],
      },
      { role: 'tool', tool_call_id: 'c', content: '' },
    ]);
    expect(withCall.tokens).toBe(base.tokens + 4 + 3 + 3);

    const tools = [noArgs];
    const withTools = await promptTokens([{ role: 'user', content: 'abcd' }], { tools, tool_choice: 'none' });
    const json = JSON.stringify(tools);
    expect(withTools.tokens).toBe(Math.ceil((4 + json.length) / 4) + 3 + 3);
  });
});
