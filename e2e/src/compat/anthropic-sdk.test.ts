import Anthropic from '@anthropic-ai/sdk';
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

const tool: Anthropic.Tool = {
  name: WEATHER_TOOL.name,
  description: WEATHER_TOOL.description,
  input_schema: WEATHER_TOOL.parameters as unknown as Anthropic.Tool.InputSchema,
};

/**
 * The official Anthropic client against the gateway's `/v1/messages`, with the worker driving an
 * OpenAI-compatible backend and an Anthropic one: the same answers in Anthropic's format.
 */
describe.each(['openai', 'anthropic'] as const)(
  'Anthropic SDK through /v1/messages, %s backend',
  (provider) => {
    let stack: CompatStack;
    let client: Anthropic;
    beforeAll(async () => {
      stack = await startCompatStack(provider);
      client = new Anthropic({ baseURL: stack.apiUrl, apiKey: stack.apiKey, maxRetries: 0 });
    });
    afterAll(() => stack?.close());

    const ask: Anthropic.MessageParam = { role: 'user', content: 'What is the weather in Paris?' };

    it('messages.countTokens: an estimate that grows with the prompt and its tools; nothing generated', async () => {
      const calls = stack.backendRequests().length;
      const short = await client.messages.countTokens({ model: DEFAULT_MODEL, messages: [ask] });
      const long = await client.messages.countTokens({
        model: DEFAULT_MODEL,
        system: 'Answer in French, in full sentences, with sources.',
        messages: [
          ask,
          { role: 'assistant', content: 'Let me check.' },
          { role: 'user', content: 'Thanks!' },
        ],
        tools: [
          { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
        ],
      });
      expect(short.input_tokens).toBeGreaterThan(0);
      expect(long.input_tokens).toBeGreaterThan(short.input_tokens);
      expect(stack.backendRequests().length).toBe(calls);
    });

    it('streams text: the SDK assembles the same message as the non-streaming answer', async () => {
      const body = {
        model: DEFAULT_MODEL,
        max_tokens: 8,
        system: 'Be brief.',
        messages: [{ role: 'user' as const, content: 'Name a queue.' }],
      };
      const events: string[] = [];
      const stream = client.messages.stream(body);
      stream.on('streamEvent', (e) => events.push(e.type));
      const streamed = await stream.finalMessage();
      expect(events[0]).toBe('message_start');
      expect(events.at(-1)).toBe('message_stop');
      expect(events).toContain('content_block_delta');
      expect(streamed.stop_reason).toBe('max_tokens');
      expect(streamed.usage.output_tokens).toBe(8);
      expect(streamed.usage.input_tokens).toBeGreaterThan(0);
      const whole = await client.messages.create(body);
      expect(whole.content).toEqual(streamed.content);
      expect(whole.content[0]).toMatchObject({ type: 'text', text: expect.stringMatching(/\w/) });
    });

    it('two-turn tool round trip: tool_use with its input object, then the tool_result answered', async () => {
      const first = await client.messages
        .stream({ model: DEFAULT_MODEL, max_tokens: 200, messages: [ask], tools: [tool] })
        .finalMessage();
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
      expect(use.name).toBe('get_weather');
      expect(use.input).toMatchObject({ city: expect.any(String), unit: 'celsius' });

      const second = await client.messages.create({
        model: DEFAULT_MODEL,
        max_tokens: 10,
        tools: [tool],
        messages: [
          ask,
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 °C' }] },
        ],
      });
      expect(second.stop_reason).toMatch(/^(end_turn|max_tokens)$/);
      expect(second.content[0]).toMatchObject({ type: 'text' });
      // The backend got the tool call and its result back, in its own format.
      const sent = JSON.stringify(stack.backendRequests().at(-1)!.body);
      expect(sent).toContain(use.id);
      expect(sent).toContain('21 °C');
    });

    it('reasoning arrives as a thinking block before the text', async () => {
      const message = await client.messages
        .stream({ model: REASONING_MODEL, max_tokens: 20, messages: [ask] })
        .finalMessage();
      expect(message.content.map((b) => b.type)).toEqual(['thinking', 'text']);
      expect((message.content[0] as Anthropic.ThinkingBlock).thinking).toMatch(/\w/);
    });

    it('not streaming: the same thinking, text and tool_use blocks in one message', async () => {
      const body = { model: REASONING_MODEL, max_tokens: 20, messages: [ask] };
      const streamed = await client.messages.stream(body).finalMessage();
      const whole = await client.messages.create(body);
      expect(whole.content).toEqual(streamed.content);
      const tools = await client.messages.create({
        model: DEFAULT_MODEL,
        max_tokens: 200,
        messages: [ask],
        tools: [tool],
      });
      expect(tools.stop_reason).toBe('tool_use');
      expect(tools.content.find((b) => b.type === 'tool_use')).toMatchObject({
        name: 'get_weather',
        input: { city: expect.any(String), unit: 'celsius' },
      });
    });

    it('an abort reaches the backend', async () => {
      const before = stack.sim!.stats().aborted;
      const stream = await client.messages.create({
        model: DEFAULT_MODEL,
        max_tokens: 2000,
        stream: true,
        messages: [{ role: 'user', content: 'Tell me a long story.' }],
      });
      for await (const event of stream) {
        if (event.type === 'content_block_delta') break; // leaving the loop aborts the request
      }
      await until(() => stack.sim!.stats().aborted > before, 5000);
      expect(stack.sim!.stats().aborted).toBe(before + 1);
    });

    it('error classes in the Anthropic shape: 401, 404, 400, 429, 503', async () => {
      const fail = (c: Anthropic, model = DEFAULT_MODEL, extra: Record<string, unknown> = {}) =>
        c.messages
          .create({ model, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }], ...extra })
          .then(() => undefined)
          .catch((e: unknown) => e as InstanceType<typeof Anthropic.APIError>);
      const as = (apiKey: string) => new Anthropic({ baseURL: stack.apiUrl, apiKey, maxRetries: 0 });

      const unauthorized = await fail(as('sk-wrong'));
      expect(unauthorized).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(unauthorized?.error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
      expect(await fail(client, 'no-such-model')).toBeInstanceOf(Anthropic.NotFoundError);
      const bad = await fail(client, DEFAULT_MODEL, {
        messages: [{ role: 'user', content: [{ type: 'video' }] }],
      });
      expect(bad).toBeInstanceOf(Anthropic.BadRequestError);
      expect(bad?.message).toContain('video');
      expect((await fail(client, GHOST_MODEL))?.status).toBe(503);
      const limited = as(await stack.keyOf('one_rpm'));
      expect(await fail(limited)).toBeUndefined();
      expect(await fail(limited)).toBeInstanceOf(Anthropic.RateLimitError);
      expect(await fail(as(await stack.keyOf('broke')))).toBeInstanceOf(Anthropic.RateLimitError);
    });
  },
);
