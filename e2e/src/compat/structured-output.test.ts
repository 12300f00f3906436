import { DEFAULT_MODEL } from '@llmgw/config';
import OpenAI, { APIError } from 'openai';
import { LengthFinishReasonError } from 'openai/core/error';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type CompatStack, startCompatStack } from '../stack/compat.ts';

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** A zod 4 schema with what zodResponseFormat turns into definitions, enums, nullables and bounds. */
const Item = z.object({ name: z.string(), qty: z.int().min(1).max(3) });
const Order = z.object({
  title: z.string().describe('a short title'),
  status: z.enum(['open', 'closed']),
  id: z.uuid(),
  placed: z.iso.datetime(),
  items: z.array(Item).min(2),
  gift: Item.nullable(),
  note: z.string().nullable(),
  total: z.number().positive(),
});

/** A hand-written strict schema: $defs/$ref, anyOf with null, a type array, description, nesting. */
const HAND_WRITTEN = {
  name: 'weather_report',
  description: 'A weather report for one city',
  strict: true,
  schema: {
    type: 'object',
    properties: {
      city: { type: 'string' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'array', items: { $ref: '#/$defs/Day' }, minItems: 1, maxItems: 3 },
      alert: { anyOf: [{ type: 'string' }, { type: 'null' }] },
      source: { type: ['string', 'null'] },
    },
    required: ['city', 'unit', 'days', 'alert', 'source'],
    additionalProperties: false,
    $defs: {
      Day: {
        type: 'object',
        properties: {
          high: { type: 'number', minimum: -50, maximum: 60 },
          sunny: { type: 'boolean' },
        },
        required: ['high', 'sunny'],
        additionalProperties: false,
      },
    },
  },
} as const;

/** What HAND_WRITTEN promises, checked by hand (the parsed value is plain JSON). */
function expectWeatherReport(value: unknown): void {
  expect(value).toEqual({
    city: expect.any(String),
    unit: expect.stringMatching(/^(celsius|fahrenheit)$/),
    days: expect.any(Array),
    alert: expect.toBeOneOf([null, expect.any(String)]),
    source: expect.toBeOneOf([null, expect.any(String)]),
  });
  const days = (value as { days: unknown[] }).days;
  expect(days.length).toBeGreaterThanOrEqual(1);
  expect(days.length).toBeLessThanOrEqual(3);
  for (const day of days) {
    expect(day).toEqual({ high: expect.any(Number), sunny: expect.any(Boolean) });
    expect((day as { high: number }).high).toBeGreaterThanOrEqual(-50);
  }
}

const ask: Message[] = [{ role: 'user', content: 'Report the order as JSON.' }];

/**
 * Structured outputs (`response_format`) through /v1/chat/completions with openai-node, on an
 * OpenAI-compatible backend (relayed unchanged; the simulator answers with JSON that follows the
 * schema) and an Anthropic one (one forced tool whose input is the answer).
 */
describe.each(['openai', 'anthropic'] as const)('structured outputs, %s backend', (provider) => {
  let stack: CompatStack;
  let client: OpenAI;
  beforeAll(async () => {
    stack = await startCompatStack(provider);
    client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  });
  afterAll(() => stack?.close());

  const lastBackendBody = () => stack.backendRequests().at(-1)!.body;

  it('the response_format reaches the backend unchanged (as a forced tool on Anthropic)', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: HAND_WRITTEN };
    const res = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      response_format,
    });
    expect(res.choices[0]!.finish_reason).toBe('stop');
    expectWeatherReport(JSON.parse(res.choices[0]!.message.content!));
    const sent = lastBackendBody();
    if (provider === 'openai') {
      expect(sent.response_format).toEqual(response_format);
      // Key order too: a model writes the properties in the schema's order.
      expect(JSON.stringify(sent.response_format)).toBe(JSON.stringify(response_format));
    } else {
      expect(sent.tools).toEqual([
        { name: HAND_WRITTEN.name, description: HAND_WRITTEN.description, input_schema: HAND_WRITTEN.schema },
      ]);
      expect(sent.tool_choice).toEqual({ type: 'tool', name: HAND_WRITTEN.name });
      expect(sent.response_format).toBeUndefined();
    }
  });

  it('parse() with zodResponseFormat (zod 4): message.parsed follows the schema', async () => {
    const response_format = zodResponseFormat(Order, 'order');
    const res = await client.chat.completions.parse({ model: DEFAULT_MODEL, messages: ask, response_format });
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('stop');
    expect(choice.message.refusal).toBeNull();
    const parsed = choice.message.parsed!;
    // parse() already ran Order.parse; check it again, and that the answer is the content.
    expect(Order.parse(parsed)).toEqual(parsed);
    expect(JSON.parse(choice.message.content!)).toEqual(parsed);
    expect(parsed.items.length).toBeGreaterThanOrEqual(2);
    if (provider === 'openai') {
      expect(lastBackendBody().response_format).toEqual(JSON.parse(JSON.stringify(response_format)));
    }
  });

  it('stream() with zodResponseFormat: content deltas in several chunks, the final message parsed', async () => {
    const stream = client.chat.completions.stream({
      model: DEFAULT_MODEL,
      messages: ask,
      response_format: zodResponseFormat(Order, 'order'),
      stream_options: { include_usage: true },
    });
    let deltas = 0;
    stream.on('content.delta', () => deltas++);
    const final = await stream.finalChatCompletion();
    expect(deltas).toBeGreaterThan(2);
    const choice = final.choices[0]!;
    expect(choice.finish_reason).toBe('stop');
    expect(Order.safeParse(choice.message.parsed).success).toBe(true);
    expect(final.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('parse() with a hand-written json_schema', async () => {
    const res = await client.chat.completions.parse({
      model: DEFAULT_MODEL,
      messages: ask,
      response_format: { type: 'json_schema', json_schema: HAND_WRITTEN },
    });
    expectWeatherReport(res.choices[0]!.message.parsed);
  });

  it('json_object: the content is a JSON object', async () => {
    const res = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: ask,
      response_format: { type: 'json_object' },
    });
    expect(res.choices[0]!.finish_reason).toBe('stop');
    const value = JSON.parse(res.choices[0]!.message.content!);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
    if (provider === 'openai') expect(lastBackendBody().response_format).toEqual({ type: 'json_object' });
    else expect(lastBackendBody().tool_choice).toMatchObject({ type: 'tool' });
  });

  it('response_format null or text: the usual words', async () => {
    // openai-node's types leave null out; OpenAI and vLLM take it as "not set", and so do we.
    for (const response_format of [null, { type: 'text' as const }]) {
      const res = await client.chat.completions.create({
        model: DEFAULT_MODEL,
        messages: ask,
        max_tokens: 6,
        response_format: response_format as OpenAI.Chat.ChatCompletionCreateParams['response_format'],
      });
      expect(res.choices[0]!.message.content).toMatch(/^\w+( \w+){5}$/);
      if (provider === 'openai') {
        expect(lastBackendBody().response_format).toEqual(response_format ?? undefined);
      } else expect(lastBackendBody().tools).toBeUndefined();
    }
  });

  it('max_tokens cuts the JSON short: finish_reason length, and parse() says so', async () => {
    const body = {
      model: DEFAULT_MODEL,
      messages: ask,
      max_tokens: 3,
      response_format: zodResponseFormat(Order, 'order'),
    };
    const raw = await client.chat.completions.create(body);
    expect(raw.choices[0]!.finish_reason).toBe('length');
    expect(raw.usage!.completion_tokens).toBe(3);
    await expect(client.chat.completions.parse(body)).rejects.toBeInstanceOf(LengthFinishReasonError);
  });

  if (provider === 'anthropic') {
    it('tools together with response_format: a clear 502 backend_bad_request', async () => {
      const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
        { type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } },
      ];
      const err = await client.chat.completions
        .create({
          model: DEFAULT_MODEL,
          messages: ask,
          tools,
          response_format: { type: 'json_schema', json_schema: HAND_WRITTEN },
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(502);
      expect((err as APIError).code).toBe('backend_bad_request');
      expect((err as APIError).message).toMatch(/response_format cannot be combined with tools/);
    });
  }
});
