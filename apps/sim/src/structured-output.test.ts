import { Anthropic } from '@anthropic-ai/sdk';
import { DEFAULT_MODEL } from '@llmgw/config';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, contentOf, post, readSse } from './test-helpers.ts';

const REASONER = 'sim-reasoner';

/** A pydantic-style schema: a $ref, an enum, an Optional, an array with minItems. */
const schema = {
  $defs: {
    Item: {
      type: 'object',
      properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 3 } },
      required: ['name', 'qty'],
      additionalProperties: false,
    },
  },
  type: 'object',
  properties: {
    title: { type: 'string' },
    status: { type: 'string', enum: ['open', 'closed'] },
    items: { type: 'array', items: { $ref: '#/$defs/Item' }, minItems: 2 },
    note: { type: ['string', 'null'] },
  },
  required: ['title', 'status', 'items', 'note'],
  additionalProperties: false,
};
const validate = new Ajv2020({ strict: false }).compile(schema);

const jsonSchema = { type: 'json_schema', json_schema: { name: 'order', schema, strict: true } };
const ask = [{ role: 'user', content: 'Summarize the order.' }];

describe('response_format on /v1/chat/completions', () => {
  let sim: Simulator;
  let url: string;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1, models: [DEFAULT_MODEL, REASONER] });
    url = `${sim.url}/v1/chat/completions`;
  });
  afterAll(() => sim.close());

  const chat = async (body: Record<string, unknown>) => {
    const res = await post(url, { model: DEFAULT_MODEL, messages: ask, ...body });
    expect(res.status).toBe(200);
    return (await res.json()) as {
      choices: { message: { content: string | null; tool_calls?: unknown[] }; finish_reason: string }[];
      usage: { completion_tokens: number };
    };
  };
  const stream = async (body: Record<string, unknown>) => {
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages: ask,
      stream: true,
      stream_options: { include_usage: true },
      ...body,
    });
    expect(res.status).toBe(200);
    return chunksOf(await readSse(res));
  };

  it('json_schema: content is JSON that validates, streamed in several content deltas, finish stop', async () => {
    const chunks = await stream({ response_format: jsonSchema });
    const pieces = chunks.map((c) => c.choices[0]?.delta.content ?? '').filter((t) => t !== '');
    expect(pieces.length).toBeGreaterThan(3);
    const content = contentOf(chunks);
    const value = JSON.parse(content);
    expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason).toBe('stop');
    // One generated token per content delta.
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(pieces.length);

    const whole = await chat({ response_format: jsonSchema });
    expect(whole.choices[0]!.message.content).toBe(content);
    expect(whole.choices[0]!.finish_reason).toBe('stop');
    expect(whole.usage.completion_tokens).toBe(pieces.length);
  });

  it('is deterministic, and depends on the prompt and the seed', async () => {
    const a = await chat({ response_format: jsonSchema });
    const b = await chat({ response_format: jsonSchema });
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    const seeded = await chat({ response_format: jsonSchema, seed: 3 });
    expect(seeded.choices[0]!.message.content).not.toBe(a.choices[0]!.message.content);
    expect(validate(JSON.parse(seeded.choices[0]!.message.content!))).toBe(true);
  });

  it('json_object: a JSON object; a json_schema without a schema too; none: the usual words', async () => {
    const object = await chat({ response_format: { type: 'json_object' } });
    expect(JSON.parse(object.choices[0]!.message.content!)).toEqual({ answer: expect.any(String) });
    const schemaless = await chat({ response_format: { type: 'json_schema', json_schema: { name: 'x' } } });
    expect(JSON.parse(schemaless.choices[0]!.message.content!)).toEqual({ answer: expect.any(String) });
    const text = await chat({ response_format: { type: 'text' }, max_tokens: 8 });
    expect(text.choices[0]!.message.content).toMatch(/^\w+( \w+){7}$/);
    expect((await chat({ max_tokens: 8 })).choices[0]!.message.content).toBe(
      text.choices[0]!.message.content,
    );
  });

  it('max_tokens cuts the JSON short with finish_reason length, as vLLM does', async () => {
    const cut = await chat({ response_format: jsonSchema, max_tokens: 3 });
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.usage.completion_tokens).toBe(3);
    const full = await chat({ response_format: jsonSchema });
    expect(full.choices[0]!.message.content!.startsWith(cut.choices[0]!.message.content!)).toBe(true);
    expect(() => JSON.parse(cut.choices[0]!.message.content!)).toThrow();
  });

  it('logprobs line up with the JSON pieces; a stop string cuts the JSON', async () => {
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages: ask,
      response_format: jsonSchema,
      logprobs: true,
    });
    const json = (await res.json()) as {
      choices: { message: { content: string }; logprobs: { content: { token: string }[] } }[];
    };
    const { message, logprobs } = json.choices[0]!;
    expect(logprobs.content.map((l) => l.token).join('')).toBe(message.content);
    const stopped = await chat({ response_format: jsonSchema, stop: ['"status"'] });
    expect(stopped.choices[0]!.message.content).toBe(
      message.content.slice(0, message.content.indexOf('"status"')),
    );
  });

  it('a reasoning model reasons first, then answers in JSON', async () => {
    const chunks = await stream({ model: REASONER, response_format: jsonSchema });
    const deltas = chunks.map((c) => c.choices[0]?.delta as { content?: string; reasoning_content?: string });
    const lastReasoning = deltas.findLastIndex((d) => d?.reasoning_content);
    const firstContent = deltas.findIndex((d) => d?.content);
    expect(lastReasoning).toBeGreaterThan(0);
    expect(firstContent).toBeGreaterThan(lastReasoning);
    expect(validate(JSON.parse(contentOf(chunks)))).toBe(true);
  });

  it('tool calls win over the structured output; the tool result is answered in JSON', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    const call = await chat({ response_format: jsonSchema, tools });
    expect(call.choices[0]!.finish_reason).toBe('tool_calls');
    const answer = await chat({
      response_format: jsonSchema,
      tools,
      messages: [
        ...ask,
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'two items' },
      ],
    });
    expect(validate(JSON.parse(answer.choices[0]!.message.content!))).toBe(true);
  });

  it('refuses an unknown type and a json_schema type without json_schema', async () => {
    for (const response_format of [{ type: 'yaml' }, { type: 'json_schema' }]) {
      const res = await post(url, { model: DEFAULT_MODEL, messages: ask, response_format });
      expect(res.status).toBe(400);
    }
  });

  it("openai-node's parse() reads the answer", async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await client.chat.completions.parse({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Summarize the order.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'order', schema, strict: true } },
    });
    expect(validate(res.choices[0]!.message.parsed)).toBe(true);
  });
});

describe('a forced tool on /v1/messages (how a gateway maps response_format to Anthropic)', () => {
  let sim: Simulator;
  let client: Anthropic;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1 });
    client = new Anthropic({ baseURL: sim.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => sim.close());

  it('the tool_use input validates against the input_schema, streamed and not', async () => {
    const body = {
      model: DEFAULT_MODEL,
      max_tokens: 400,
      messages: [{ role: 'user' as const, content: 'Summarize the order.' }],
      tools: [{ name: 'order', input_schema: schema as Anthropic.Tool.InputSchema }],
      tool_choice: { type: 'tool' as const, name: 'order' },
    };
    const message = await client.messages.stream(body).finalMessage();
    expect(message.stop_reason).toBe('tool_use');
    const block = message.content[0] as Anthropic.ToolUseBlock;
    expect(block).toMatchObject({ type: 'tool_use', name: 'order' });
    expect(validate(block.input), JSON.stringify(validate.errors)).toBe(true);
    const whole = await client.messages.create(body);
    expect((whole.content[0] as Anthropic.ToolUseBlock).input).toEqual(block.input);
  });
});
