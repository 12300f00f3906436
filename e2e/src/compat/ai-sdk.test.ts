import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { DEFAULT_MODEL } from '@llmgw/config';
import { until } from '@llmgw/devkit';
import { APICallError, generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CompatStack,
  GHOST_MODEL,
  REASONING_MODEL,
  startCompatStack,
  WEATHER_TOOL,
} from '../stack/compat.ts';

/** The Vercel AI SDK (v6) with @ai-sdk/openai-compatible, pointed at the gateway's /v1. */
describe('Vercel AI SDK through /v1', () => {
  let stack: CompatStack;
  let provider: ReturnType<typeof createOpenAICompatible>;
  const as = (apiKey: string) =>
    createOpenAICompatible({ name: 'gateway', baseURL: `${stack.apiUrl}/v1`, apiKey, includeUsage: true });
  beforeAll(async () => {
    stack = await startCompatStack();
    provider = as(stack.apiKey);
  });
  afterAll(() => stack?.close());

  it('streams text with usage', async () => {
    const result = streamText({
      model: provider(DEFAULT_MODEL),
      prompt: 'Name a queue.',
      maxOutputTokens: 8,
    });
    let text = '';
    for await (const part of result.textStream) text += part;
    expect(text).toMatch(/\w/);
    expect(await result.text).toBe(text);
    expect((await result.usage).outputTokens).toBe(8);
    expect(await result.finishReason).toBe('length');
  });

  it('a two-step agent loop: the model calls the tool, the SDK runs it and sends the result, the model answers', async () => {
    const seen: unknown[] = [];
    const result = await generateText({
      model: provider(DEFAULT_MODEL),
      prompt: 'What is the weather in Paris?',
      maxOutputTokens: 12,
      tools: {
        get_weather: tool({
          description: WEATHER_TOOL.description,
          inputSchema: jsonSchema<{ city: string; unit: string }>(WEATHER_TOOL.parameters as never),
          execute: async (input) => {
            seen.push(input);
            return { temp_c: 21 };
          },
        }),
      },
      stopWhen: stepCountIs(3),
    });
    expect(seen).toEqual([{ city: expect.any(String), unit: 'celsius' }]);
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]!.finishReason).toBe('tool-calls');
    expect(result.text).toMatch(/\w/);
    const sent = stack.backendRequests().at(-1)!.body as {
      messages: { role: string; tool_call_id?: string }[];
    };
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(sent.messages[2]!.tool_call_id).toBe(result.steps[0]!.toolCalls[0]!.toolCallId);
  });

  it('streams a tool call the SDK assembles', async () => {
    const result = streamText({
      model: provider(DEFAULT_MODEL),
      prompt: 'Weather in Oslo?',
      tools: { get_weather: tool({ inputSchema: jsonSchema(WEATHER_TOOL.parameters as never) }) },
    });
    const calls = await result.toolCalls;
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toMatchObject({ unit: 'celsius' });
    expect(await result.finishReason).toBe('tool-calls');
  });

  it('reasoning streams as reasoning parts before the text', async () => {
    const result = streamText({
      model: provider(REASONING_MODEL),
      prompt: 'Think first.',
      maxOutputTokens: 20,
    });
    const kinds: string[] = [];
    for await (const part of result.fullStream) {
      if (part.type === 'reasoning-delta' || part.type === 'text-delta') {
        if (kinds.at(-1) !== part.type) kinds.push(part.type);
      }
    }
    expect(kinds).toEqual(['reasoning-delta', 'text-delta']);
    expect(await result.reasoningText).toMatch(/\w/);
  });

  it('an abort reaches the backend', async () => {
    const before = stack.sim!.stats().aborted;
    const ac = new AbortController();
    const result = streamText({
      model: provider(DEFAULT_MODEL),
      prompt: 'Tell me a long story.',
      maxOutputTokens: 2000,
      abortSignal: ac.signal,
      onError: () => {},
    });
    for await (const _ of result.textStream) {
      ac.abort();
      break;
    }
    await until(() => stack.sim!.stats().aborted > before, 5000);
    expect(stack.sim!.stats().aborted).toBe(before + 1);
  });

  it('error classes surface as APICallError with the status: 401, 404, 400, 429 (rate and quota), 503', async () => {
    const fail = async (p: ReturnType<typeof createOpenAICompatible>, model = DEFAULT_MODEL) => {
      const err = await generateText({
        model: p(model),
        prompt: 'hi',
        maxOutputTokens: 2,
        maxRetries: 0,
      }).catch((e: unknown) => e);
      expect(APICallError.isInstance(err)).toBe(true);
      return err as APICallError;
    };
    expect((await fail(as('sk-wrong'))).statusCode).toBe(401);
    expect((await fail(provider, 'no-such-model')).statusCode).toBe(404);
    expect((await fail(provider, GHOST_MODEL)).statusCode).toBe(503);
    const bad = (await generateText({
      model: provider(DEFAULT_MODEL),
      prompt: 'hi',
      maxRetries: 0,
      providerOptions: { gateway: { n: 2 } },
    }).catch((e: unknown) => e)) as APICallError;
    expect(bad.statusCode).toBe(400);
    expect(bad.responseBody).toContain('n > 1 is not supported');
    const limited = as(await stack.keyOf('one_rpm'));
    await generateText({ model: limited(DEFAULT_MODEL), prompt: 'hi', maxOutputTokens: 2 });
    const rate = await fail(limited);
    expect(rate.statusCode).toBe(429);
    expect(rate.isRetryable).toBe(true);
    const quota = await fail(as(await stack.keyOf('broke')));
    expect(quota.statusCode).toBe(429);
    expect(quota.responseBody).toContain('insufficient_quota');
  });
});
