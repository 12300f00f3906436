import { type AIMessage, type AIMessageChunk, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { DEFAULT_MODEL } from '@llmgw/config';
import { until } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CompatStack,
  GHOST_MODEL,
  REASONING_MODEL,
  startCompatStack,
  WEATHER_TOOL,
} from '../stack/compat.ts';

/** LangChain JS (@langchain/openai ChatOpenAI) pointed at the gateway's /v1. */
describe('LangChain ChatOpenAI through /v1', () => {
  let stack: CompatStack;
  const chat = (
    opts: { model?: string; apiKey?: string; maxTokens?: number; streaming?: boolean; n?: number } = {},
  ) =>
    new ChatOpenAI({
      model: opts.model ?? DEFAULT_MODEL,
      apiKey: opts.apiKey ?? stack.apiKey,
      maxTokens: opts.maxTokens ?? 10,
      maxRetries: 0,
      // `streaming: false` would make .stream() one non-streaming call; leave it unset.
      ...(opts.streaming !== undefined && { streaming: opts.streaming }),
      ...(opts.n !== undefined && { n: opts.n }),
      configuration: { baseURL: `${stack.apiUrl}/v1` },
    });
  beforeAll(async () => {
    stack = await startCompatStack();
  });
  afterAll(() => stack?.close());

  it('invoke and stream give the same text', async () => {
    const prompt = [new HumanMessage('Name a queue.')];
    const whole = await chat().invoke(prompt);
    let streamed = '';
    for await (const chunk of await chat().stream(prompt)) streamed += chunk.content as string;
    expect(whole.content).toMatch(/\w/);
    expect(streamed).toBe(whole.content);
    expect(whole.response_metadata.finish_reason).toBe('length');
  });

  it('tool round trip: bindTools, tool_calls parsed, a ToolMessage answered', async () => {
    const model = chat().bindTools([{ type: 'function', function: WEATHER_TOOL }]);
    const ask = new HumanMessage('What is the weather in Paris?');
    const first = (await model.invoke([ask])) as AIMessage;
    expect(first.tool_calls).toHaveLength(1);
    const call = first.tool_calls![0]!;
    expect(call.name).toBe('get_weather');
    expect(call.args).toMatchObject({ city: expect.any(String), unit: 'celsius' });

    const second = await model.invoke([
      ask,
      first,
      new ToolMessage({ tool_call_id: call.id!, content: '21 °C' }),
    ]);
    expect(second.content).toMatch(/\w/);
    const sent = stack.backendRequests().at(-1)!.body as { messages: Record<string, unknown>[] };
    expect(sent.messages[1]).toMatchObject({ role: 'assistant', tool_calls: [{ id: call.id }] });
    expect(sent.messages[2]).toMatchObject({ role: 'tool', tool_call_id: call.id, content: '21 °C' });
  });

  it('streamed tool calls are assembled into tool_call_chunks and tool_calls', async () => {
    const model = chat({ streaming: true }).bindTools([{ type: 'function', function: WEATHER_TOOL }]);
    let merged: AIMessageChunk | undefined;
    let chunks = 0;
    for await (const chunk of await model.stream([new HumanMessage('Weather in Oslo?')])) {
      chunks++;
      merged = merged ? merged.concat(chunk) : chunk;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(merged?.tool_calls?.[0]).toMatchObject({ name: 'get_weather', args: { unit: 'celsius' } });
  });

  it('reasoning lands in additional_kwargs.reasoning_content', async () => {
    const res = await chat({ model: REASONING_MODEL, maxTokens: 20 }).invoke([
      new HumanMessage('Think first.'),
    ]);
    expect(res.additional_kwargs.reasoning_content).toMatch(/\w/);
    expect(res.content).toMatch(/\w/);
  });

  it('an abort reaches the backend', async () => {
    const before = stack.sim!.stats().aborted;
    const ac = new AbortController();
    const stream = await chat({ maxTokens: 2000 }).stream([new HumanMessage('Tell me a long story.')], {
      signal: ac.signal,
    });
    await expect(
      (async () => {
        for await (const _ of stream) ac.abort();
      })(),
    ).rejects.toThrow();
    await until(() => stack.sim!.stats().aborted > before, 5000);
    expect(stack.sim!.stats().aborted).toBe(before + 1);
  });

  it('error classes: 401, 404, 400, 429 rate vs quota, 503 carry their status', async () => {
    const fail = (m: ChatOpenAI, extra: Record<string, unknown> = {}) =>
      m
        .invoke([new HumanMessage('hi')], extra)
        .then(() => undefined)
        .catch((e: unknown) => e as { status?: number; code?: string; lc_error_code?: string });
    expect((await fail(chat({ apiKey: 'sk-wrong' })))?.status).toBe(401);
    expect((await fail(chat({ model: 'no-such-model' })))?.status).toBe(404);
    expect((await fail(chat({ model: GHOST_MODEL })))?.status).toBe(503);
    expect((await fail(chat({ n: 2 })))?.status).toBe(400);
    const limited = chat({ apiKey: await stack.keyOf('one_rpm') });
    expect(await fail(limited)).toBeUndefined();
    expect((await fail(limited))?.status).toBe(429);
    const quota = await fail(chat({ apiKey: await stack.keyOf('broke') }));
    expect(quota?.status).toBe(429);
    expect(quota?.code).toBe('insufficient_quota');
  });
});
