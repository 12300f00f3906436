import { DEFAULT_MODEL } from '@llmgw/config';
import { until } from '@llmgw/devkit';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CompatStack,
  GHOST_MODEL,
  REASONING_MODEL,
  startCompatStack,
  WEATHER_TOOL,
} from '../stack/compat.ts';

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** The official openai client (v6) through the gateway, against the simulator. */
describe('openai SDK through /v1', () => {
  let stack: CompatStack;
  let client: OpenAI;
  beforeAll(async () => {
    stack = await startCompatStack();
    client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  });
  afterAll(() => stack?.close());

  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [{ type: 'function', function: WEATHER_TOOL }];
  const ask: Message = { role: 'user', content: 'What is the weather in Paris?' };

  it('two-turn tool round trip, streamed: the call arrives in fragments, its result reaches the backend unchanged', async () => {
    const stream = client.chat.completions.stream({ model: DEFAULT_MODEL, messages: [ask], tools });
    let fragments = 0;
    stream.on('chunk', (chunk) => {
      if (chunk.choices[0]?.delta.tool_calls) fragments++;
    });
    const first = await stream.finalChatCompletion();
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    const fn = (call as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function;
    expect(JSON.parse(fn.arguments)).toMatchObject({ city: expect.any(String), unit: 'celsius' });
    expect(fragments).toBeGreaterThanOrEqual(2);

    const result: Message = { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' };
    const second = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [ask, choice.message, result],
      tools,
      max_tokens: 12,
    });
    expect(second.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
    expect(second.choices[0]!.message.content).toMatch(/\w/);

    const sent = stack.backendRequests().at(-1)!.body as { messages: Record<string, unknown>[] };
    expect(sent.messages[1]).toMatchObject({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: call.id, type: 'function', function: { name: 'get_weather', arguments: fn.arguments } },
      ],
    });
    expect(sent.messages[2]).toEqual(result);
  });

  it('non-streaming tool call: message.tool_calls with content null', async () => {
    const res = await client.chat.completions.create({ model: DEFAULT_MODEL, messages: [ask], tools });
    expect(res.choices[0]!.finish_reason).toBe('tool_calls');
    expect(res.choices[0]!.message.content).toBeNull();
    expect(res.choices[0]!.message.tool_calls).toHaveLength(1);
  });

  it('reasoning streams before the answer as reasoning_content and reasoning, and matches the non-streaming answer', async () => {
    const body = { model: REASONING_MODEL, messages: [ask], max_tokens: 20, seed: 7 };
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let reasoning = '';
    let reasoningAlias = '';
    let content = '';
    let reasoningAfterContent = false;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as {
        content?: string;
        reasoning_content?: string;
        reasoning?: string;
      };
      if (delta?.reasoning_content) {
        if (content) reasoningAfterContent = true;
        reasoning += delta.reasoning_content;
        reasoningAlias += delta.reasoning ?? '';
      }
      content += delta?.content ?? '';
    }
    expect(reasoning).toMatch(/\w/);
    expect(reasoningAlias).toBe(reasoning);
    expect(content).toMatch(/\w/);
    expect(reasoningAfterContent).toBe(false);

    const whole = await client.chat.completions.create(body);
    const message = whole.choices[0]!.message as { content: string; reasoning_content?: string };
    expect(message.reasoning_content).toBe(reasoning);
    expect(message.content).toBe(content);
  });

  it('logprobs, streamed and not, line up with the text', async () => {
    const body = { model: DEFAULT_MODEL, messages: [ask], max_tokens: 6, logprobs: true, top_logprobs: 2 };
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let text = '';
    const tokens: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      for (const lp of chunk.choices[0]?.logprobs?.content ?? []) {
        tokens.push(lp.token);
        expect(lp.top_logprobs).toHaveLength(2);
      }
    }
    expect(tokens.join('')).toBe(text);
    const whole = await client.chat.completions.create(body);
    expect(whole.choices[0]!.logprobs!.content!.map((l) => l.token).join('')).toBe(
      whole.choices[0]!.message.content,
    );
  });

  it('image parts reach the backend unchanged (the gateway never fetches them)', async () => {
    const content: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [
      { type: 'text', text: 'Describe both.' },
      { type: 'image_url', image_url: { url: 'https://images.invalid/cat.png', detail: 'low' } },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
    ];
    const res = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content }],
      max_tokens: 4,
    });
    expect(res.choices[0]!.message.content).toMatch(/\w/);
    expect(stack.backendRequests().at(-1)!.body).toMatchObject({ messages: [{ role: 'user', content }] });
  });

  it('models.retrieve() and legacy completions, streamed and not, with the same text', async () => {
    expect((await client.models.retrieve(DEFAULT_MODEL)).id).toBe(DEFAULT_MODEL);
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const body = { model: DEFAULT_MODEL, prompt: 'Once upon a time', max_tokens: 5, seed: 1 };
    const whole = await client.completions.create(body);
    expect(whole.object).toBe('text_completion');
    expect(whole.choices[0]!.finish_reason).toBe('length');
    expect(whole.usage?.completion_tokens).toBe(5);
    let streamed = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await client.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      streamed += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(streamed).toBe(whole.choices[0]!.text);
    expect(usage?.completion_tokens).toBe(5);
  });

  it('an abort reaches the backend', async () => {
    const before = stack.sim!.stats().aborted;
    const stream = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Tell me a long story.' }],
      max_tokens: 2000,
      stream: true,
    });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) break; // leaving the loop aborts the request
    }
    await until(() => stack.sim!.stats().aborted > before, 5000);
    expect(stack.sim!.stats().aborted).toBe(before + 1);
  });

  it('error classes: 401, 404, 400, 429 rate limit (retryable) vs quota (insufficient_quota, final), 503', async () => {
    const messages: Message[] = [{ role: 'user', content: 'hi' }];
    const fail = (
      c: OpenAI,
      body: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming> = {},
    ) =>
      c.chat.completions
        .create({ model: DEFAULT_MODEL, messages, max_tokens: 2, ...body })
        .then(() => undefined)
        .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    const as = (apiKey: string, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
      new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey, maxRetries: 0, ...extra });

    expect(await fail(as('sk-wrong'))).toBeInstanceOf(OpenAI.AuthenticationError);
    const notFound = await fail(client, { model: 'no-such-model' });
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect(notFound?.code).toBe('model_not_found');
    expect(await fail(client, { n: 2 })).toBeInstanceOf(OpenAI.BadRequestError);
    const unavailable = await fail(client, { model: GHOST_MODEL });
    expect(unavailable?.status).toBe(503);
    expect(unavailable?.code).toBe('model_unavailable');

    const limited = as(await stack.keyOf('one_rpm'));
    expect(await fail(limited)).toBeUndefined();
    const rate = await fail(limited);
    expect(rate).toBeInstanceOf(OpenAI.RateLimitError);
    expect(rate?.code).toBe('rate_limit_exceeded');
    expect(Number(rate?.headers?.get('retry-after'))).toBeGreaterThan(0);

    // With retries on, as clients run by default: a spent quota is not retried.
    let calls = 0;
    const broke = as(await stack.keyOf('broke'), {
      maxRetries: 2,
      fetch: (url: string | URL | Request, init?: RequestInit) => {
        calls++;
        return fetch(url, init);
      },
    });
    const quota = await fail(broke);
    expect(quota).toBeInstanceOf(OpenAI.RateLimitError);
    expect(quota?.code).toBe('insufficient_quota');
    expect(quota?.type).toBe('insufficient_quota');
    expect(calls).toBe(1);
  });
});
