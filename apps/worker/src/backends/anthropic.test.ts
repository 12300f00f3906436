import type Anthropic from '@anthropic-ai/sdk';
import { DEFAULT_MODEL } from '@llmgw/config';
import {
  type ChatMessage,
  type Delta,
  type GenerationParams,
  pushDelta,
  type SignedThinking,
  Transcript,
} from '@llmgw/protocol';
import { type Simulator, startSimulator } from '@llmgw/sim';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AnthropicStreamReader,
  createAnthropicBackend,
  JSON_OBJECT_TOOL,
  toAnthropicRequest,
} from './anthropic.ts';
import { BackendError, type GenerateRequest } from './backend.ts';

const chat = (messages: ChatMessage[], params: Partial<GenerationParams> = {}): GenerateRequest => ({
  kind: 'chat',
  model: 'claude-test',
  messages,
  params: { max_tokens: 16, ...params },
});

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

function badRequest(fn: () => unknown): BackendError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).type).toBe('backend_bad_request');
    return err as BackendError;
  }
  throw new Error('expected a BackendError');
}

describe('toAnthropicRequest', () => {
  it('hoists system and developer messages into `system`, joined with blank lines', () => {
    const body = toAnthropicRequest(
      chat([
        { role: 'system', content: 'Be brief.' },
        {
          role: 'developer',
          content: [
            { type: 'text', text: 'Answer ' },
            { type: 'text', text: 'in French.' },
          ],
        },
        { role: 'user', content: 'hello' },
      ]),
    );
    expect(body.system).toBe('Be brief.\n\nAnswer in French.');
    expect(body.messages).toEqual([{ role: 'user', content: 'hello' }]);
    expect(body).toMatchObject({ model: 'claude-test', max_tokens: 16, stream: true });
  });

  it('turns user parts into text and image blocks (base64 data: URLs and http URLs)', () => {
    const body = toAnthropicRequest(
      chat([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'low' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ]),
    );
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('refuses audio input', () => {
    const err = badRequest(() =>
      toAnthropicRequest(
        chat([
          { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] },
        ]),
      ),
    );
    expect(err.message).toBe('audio input is not supported by the Anthropic backend');
  });

  it('sends tool calls as tool_use blocks and tool results as one user turn, without reasoning', () => {
    const body = toAnthropicRequest(
      chat([
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: 'Let me look.',
          reasoning_content: 'The user wants two cities.',
          tool_calls: [
            { id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'toolu_2', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
        { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: 'rain' }] },
        { role: 'user', content: 'Thanks, and tomorrow?' },
      ]),
    );
    expect(body.messages).toEqual([
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me look.' },
          { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'weather', input: { city: 'Rome' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'rain' },
          { type: 'text', text: 'Thanks, and tomorrow?' },
        ],
      },
    ]);
    expect(JSON.stringify(body)).not.toContain('two cities');
  });

  it("with thinking on, sends an assistant turn's signed thinking first, unchanged; with it off, not", () => {
    const signed = [
      { type: 'thinking' as const, thinking: 'Two cities.', signature: 'c2lnMQ==' },
      { type: 'redacted_thinking' as const, data: 'EmwKAhgBEgy' },
    ];
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: 'Let me look.',
        reasoning_content: 'Two cities.',
        thinking_blocks: signed,
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
      // A plain-text assistant turn with thinking is blocks too, not the string shortcut.
      { role: 'assistant', content: 'Sunny.', thinking_blocks: [signed[0]!] },
      { role: 'user', content: 'Thanks.' },
    ];
    const on = toAnthropicRequest(chat(messages, { thinking: { type: 'enabled', budget_tokens: 1024 } }));
    expect(on.messages[1]).toEqual({
      role: 'assistant',
      content: [
        ...signed,
        { type: 'text', text: 'Let me look.' },
        { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
      ],
    });
    expect(on.messages[3]).toEqual({
      role: 'assistant',
      content: [signed[0], { type: 'text', text: 'Sunny.' }],
    });
    // Copies, not the job's own objects.
    expect((on.messages[1]!.content as unknown[])[0]).not.toBe(signed[0]);
    for (const thinking of [undefined, { type: 'disabled' as const }]) {
      const off = toAnthropicRequest(chat(messages, { ...(thinking && { thinking }) }));
      expect(JSON.stringify(off.messages)).not.toContain('c2lnMQ==');
      expect(off.messages[3]).toEqual({ role: 'assistant', content: 'Sunny.' });
    }
  });

  it('an assistant turn of tool calls only, with blank arguments, and refusals', () => {
    const body = toAnthropicRequest(
      chat([
        { role: 'user', content: 'time?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'now', arguments: '' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: '' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot.' }] },
        { role: 'user', content: 'ok' },
        { role: 'assistant', content: null, refusal: 'Still no.' },
      ]),
    );
    expect(body.messages).toEqual([
      { role: 'user', content: 'time?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 'now', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c1' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'I cannot.' }] },
      { role: 'user', content: 'ok' },
      { role: 'assistant', content: [{ type: 'text', text: 'Still no.' }] },
    ]);
  });

  it('merges consecutive turns of one role and leaves out empty ones', () => {
    const body = toAnthropicRequest(
      chat([
        { role: 'user', content: 'one' },
        { role: 'user', content: '' },
        { role: 'user', content: [{ type: 'text', text: 'two' }] },
        { role: 'system', content: 'late system text' },
        { role: 'user', content: 'three' },
      ]),
    );
    expect(body.system).toBe('late system text');
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'one' },
          { type: 'text', text: 'two' },
          { type: 'text', text: 'three' },
        ],
      },
    ]);
  });

  it('refuses tool-call arguments that are not a JSON object, naming the call', () => {
    const withArgs = (args: string) =>
      chat([
        { role: 'user', content: 'x' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_bad', type: 'function', function: { name: 'f', arguments: args } }],
        },
      ]);
    expect(badRequest(() => toAnthropicRequest(withArgs('{"a":'))).message).toContain('call_bad');
    expect(badRequest(() => toAnthropicRequest(withArgs('[1]'))).message).toContain('call_bad');
  });

  it('needs a user or assistant message', () => {
    badRequest(() => toAnthropicRequest(chat([{ role: 'system', content: 'only me' }])));
    badRequest(() => toAnthropicRequest(chat([])));
  });

  it('sends a legacy completion prompt as one user message', () => {
    const body = toAnthropicRequest({
      kind: 'completion',
      model: 'claude-test',
      messages: [],
      prompt: 'Once upon a time',
      params: { max_tokens: 4 },
    });
    expect(body.messages).toEqual([{ role: 'user', content: 'Once upon a time' }]);
  });

  it('maps sampling parameters and drops those Anthropic does not have', () => {
    const body = toAnthropicRequest(
      chat([{ role: 'user', content: 'hi' }], {
        stop: ['END'],
        temperature: 0.5,
        top_p: 0.9,
        top_k: 40,
        user: 'u-1',
        thinking: { type: 'enabled', budget_tokens: 1024 },
        seed: 7,
        presence_penalty: 1,
        frequency_penalty: 1,
        response_format: { type: 'text' },
        logprobs: true,
        top_logprobs: 2,
        reasoning_effort: 'high',
        min_p: 0.1,
        repetition_penalty: 1.1,
        chat_template_kwargs: { enable_thinking: true },
      }),
    );
    const { messages: _m, ...rest } = body;
    expect(rest).toEqual({
      model: 'claude-test',
      max_tokens: 16,
      stream: true,
      stop_sequences: ['END'],
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      metadata: { user_id: 'u-1' },
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
  });

  it('maps tools and every tool_choice, with parallel_tool_calls: false as disable_parallel_tool_use', () => {
    const tools: GenerationParams['tools'] = [
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'Weather of a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
      { type: 'function', function: { name: 'now' } },
    ];
    const withTools = (p: Partial<GenerationParams>) =>
      toAnthropicRequest(chat([{ role: 'user', content: 'hi' }], { tools, ...p }));
    expect(withTools({}).tools).toEqual([
      {
        name: 'weather',
        description: 'Weather of a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
      { name: 'now', input_schema: { type: 'object', properties: {} } },
    ]);
    expect(withTools({}).tool_choice).toBeUndefined();
    expect(withTools({ tool_choice: 'auto' }).tool_choice).toEqual({ type: 'auto' });
    expect(withTools({ tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(withTools({ tool_choice: 'required' }).tool_choice).toEqual({ type: 'any' });
    expect(withTools({ tool_choice: { type: 'function', function: { name: 'now' } } }).tool_choice).toEqual({
      type: 'tool',
      name: 'now',
    });
    expect(withTools({ parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    expect(withTools({ tool_choice: 'required', parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'any',
      disable_parallel_tool_use: true,
    });
    expect(withTools({ parallel_tool_calls: true }).tool_choice).toBeUndefined();
    // Anthropic refuses tool_choice without tools.
    const none = toAnthropicRequest(chat([{ role: 'user', content: 'hi' }], { tool_choice: 'auto' }));
    expect(none.tools).toBeUndefined();
    expect(none.tool_choice).toBeUndefined();
  });
});

/** A strict-mode schema with a $ref, as openai-node's zodResponseFormat and pydantic write them. */
const ORDER_SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', description: 'a short title' },
    status: { type: 'string', enum: ['open', 'closed'] },
    items: { type: 'array', items: { $ref: '#/definitions/Item' }, minItems: 2 },
  },
  required: ['title', 'status', 'items'],
  additionalProperties: false,
  definitions: {
    Item: {
      type: 'object',
      properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 3 } },
      required: ['name', 'qty'],
      additionalProperties: false,
    },
  },
};

describe('response_format on the Anthropic backend: one forced tool', () => {
  const ask = (params: Partial<GenerationParams>) =>
    toAnthropicRequest(chat([{ role: 'user', content: 'Summarize the order.' }], params));

  it('json_schema → a tool whose input_schema is the schema, unchanged, and tool_choice forced to it', () => {
    const body = ask({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'order', description: 'The order', schema: ORDER_SCHEMA, strict: true },
      },
    });
    expect(body.tools).toEqual([{ name: 'order', description: 'The order', input_schema: ORDER_SCHEMA }]);
    expect(body.tool_choice).toEqual({ type: 'tool', name: 'order' });
  });

  it('json_object → a tool taking any object; text → nothing', () => {
    const body = ask({ response_format: { type: 'json_object' } });
    expect(body.tools).toEqual([
      { name: JSON_OBJECT_TOOL, description: expect.any(String), input_schema: { type: 'object' } },
    ]);
    expect(body.tool_choice).toEqual({ type: 'tool', name: JSON_OBJECT_TOOL });
    const text = ask({ response_format: { type: 'text' } });
    expect(text.tools).toBeUndefined();
    expect(text.tool_choice).toBeUndefined();
  });

  it('refuses it with tools, with extended thinking, and for a schema whose root is not an object', () => {
    const format = { type: 'json_schema' as const, json_schema: { name: 'order', schema: ORDER_SCHEMA } };
    const tools = [{ type: 'function' as const, function: { name: 'now' } }];
    expect(badRequest(() => ask({ response_format: format, tools })).message).toBe(
      'response_format cannot be combined with tools on the Anthropic backend',
    );
    expect(
      badRequest(() => ask({ response_format: format, thinking: { type: 'enabled', budget_tokens: 1024 } }))
        .message,
    ).toMatch(/extended thinking/);
    const list = { type: 'json_schema' as const, json_schema: { name: 'list', schema: { type: 'array' } } };
    expect(badRequest(() => ask({ response_format: list })).message).toMatch(/root is an object/);
    // `thinking: disabled` is no thinking.
    expect(ask({ response_format: format, thinking: { type: 'disabled' } }).tool_choice).toEqual({
      type: 'tool',
      name: 'order',
    });
  });
});

/** Reads a stream of (partial) Anthropic events, as the SDK yields them. */
function readAll(events: object[], structured?: string) {
  const deltas: Delta[] = [];
  const dropped: string[] = [];
  const reader = new AnthropicStreamReader(
    {
      onDelta: (d) => deltas.push(d),
      onDropped: (w) => dropped.push(w),
    },
    structured,
  );
  for (const ev of events) reader.read(ev as Anthropic.RawMessageStreamEvent);
  return { deltas, dropped, reader };
}

const start = (index: number, content_block: object) => ({
  type: 'content_block_start',
  index,
  content_block,
});
const delta = (index: number, d: object) => ({ type: 'content_block_delta', index, delta: d });

describe('AnthropicStreamReader', () => {
  it('turns thinking, text and tool_use blocks into deltas, numbering tool calls among themselves', () => {
    const { deltas, dropped, reader } = readAll([
      { type: 'message_start', message: { usage: { input_tokens: 21, output_tokens: 1 } } },
      start(0, { type: 'thinking', thinking: '', signature: '' }),
      delta(0, { type: 'thinking_delta', thinking: 'Two cities.' }),
      delta(0, { type: 'signature_delta', signature: 'c2ln' }),
      start(1, { type: 'text', text: '' }),
      delta(1, { type: 'text_delta', text: 'Checking.' }),
      start(2, { type: 'tool_use', id: 'toolu_a', name: 'weather', input: {} }),
      delta(2, { type: 'input_json_delta', partial_json: '' }),
      delta(2, { type: 'input_json_delta', partial_json: '{"city":' }),
      delta(2, { type: 'input_json_delta', partial_json: '"Paris"}' }),
      start(3, { type: 'tool_use', id: 'toolu_b', name: 'weather', input: {} }),
      delta(3, { type: 'input_json_delta', partial_json: '{"city":"Rome"}' }),
      {
        type: 'message_delta',
        delta: { stop_reason: 'tool_use', stop_sequence: null },
        usage: { output_tokens: 42 },
      },
      { type: 'message_stop' },
    ]);
    expect(deltas).toEqual([
      { k: 'reasoning', t: 'Two cities.' },
      { k: 'reasoning', t: '', sig: 'c2ln' },
      { k: 'text', t: 'Checking.' },
      { k: 'tool', i: 0, id: 'toolu_a', name: 'weather', args: '' },
      { k: 'tool', i: 0, args: '{"city":' },
      { k: 'tool', i: 0, args: '"Paris"}' },
      { k: 'tool', i: 1, id: 'toolu_b', name: 'weather', args: '' },
      { k: 'tool', i: 1, args: '{"city":"Rome"}' },
    ]);
    expect(dropped).toEqual([]);
    expect(reader.promptTokens).toBe(21);
    expect(reader.completionTokens).toBe(42);
    expect(reader.stopReason).toBe('tool_use');
    expect(reader.stopSequence).toBeUndefined();
  });

  it('reports blocks and deltas it does not relay, once each, and skips the deltas of dropped blocks', () => {
    const { deltas, dropped } = readAll([
      start(0, { type: 'redacted_thinking', data: 'opaque' }), // relayed: see the next test
      start(1, { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} }),
      delta(1, { type: 'input_json_delta', partial_json: '{"query":"x"}' }),
      start(2, { type: 'text', text: '' }),
      delta(2, { type: 'citations_delta', citation: {} }),
      delta(2, { type: 'text_delta', text: 'Found it.' }),
      delta(2, { type: 'some_future_delta' }),
    ]);
    expect(deltas).toEqual([
      { k: 'reasoning', t: '', redacted: 'opaque' },
      { k: 'text', t: 'Found it.' },
    ]);
    expect(dropped).toEqual([
      'content_block.server_tool_use',
      'delta.citations_delta',
      'delta.some_future_delta',
    ]);
  });

  it('relays signatures (streamed, or on a whole block) and redacted thinking, which count no tokens', () => {
    const { deltas, dropped, reader } = readAll([
      start(0, { type: 'thinking', thinking: '', signature: '' }),
      delta(0, { type: 'thinking_delta', thinking: 'First.' }),
      delta(0, { type: 'signature_delta', signature: 'c2lnMQ==' }),
      start(1, { type: 'redacted_thinking', data: 'EmwKAhgBEgy' }),
      start(2, { type: 'thinking', thinking: 'Whole.', signature: 'c2lnMg==' }),
      start(3, { type: 'thinking', thinking: '', signature: '' }),
      // An empty signature proves nothing: not relayed.
      delta(3, { type: 'signature_delta', signature: '' }),
      start(4, { type: 'text', text: '' }),
      delta(4, { type: 'text_delta', text: 'Done.' }),
    ]);
    expect(deltas).toEqual([
      { k: 'reasoning', t: 'First.' },
      { k: 'reasoning', t: '', sig: 'c2lnMQ==' },
      { k: 'reasoning', t: '', redacted: 'EmwKAhgBEgy' },
      { k: 'reasoning', t: 'Whole.', sig: 'c2lnMg==' },
      { k: 'text', t: 'Done.' },
    ]);
    expect(dropped).toEqual([]);
    // First., Whole. and Done.: a signature or a redacted block is not a token of the answer.
    expect(reader.completionTokens).toBe(3);
    // As the publisher coalesces them: a signature ends its block, a redacted block stands alone.
    const coalesced: Delta[] = [];
    for (const d of deltas) pushDelta(coalesced, d);
    expect(coalesced).toEqual([
      { k: 'reasoning', t: 'First.', sig: 'c2lnMQ==' },
      { k: 'reasoning', t: '', redacted: 'EmwKAhgBEgy' },
      { k: 'reasoning', t: 'Whole.', sig: 'c2lnMg==' },
      { k: 'text', t: 'Done.' },
    ]);
    const t = new Transcript();
    t.add(coalesced);
    expect(t.thinking).toEqual([
      { type: 'thinking', thinking: 'First.', signature: 'c2lnMQ==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy' },
      { type: 'thinking', thinking: 'Whole.', signature: 'c2lnMg==' },
    ]);
  });

  it('counts deltas when Anthropic gives no output count, and keeps the stop sequence', () => {
    const { reader } = readAll([
      start(0, { type: 'text', text: '' }),
      delta(0, { type: 'text_delta', text: 'a' }),
      delta(0, { type: 'text_delta', text: 'b' }),
      {
        type: 'message_delta',
        delta: { stop_reason: 'stop_sequence', stop_sequence: 'END' },
        usage: { output_tokens: 0 },
      },
    ]);
    expect(reader.completionTokens).toBe(2);
    expect(reader.stopSequence).toBe('END');
  });

  it("streams a structured output's tool input as text, finishing with stop (length when cut)", () => {
    const events = (stop: string) => [
      start(0, { type: 'tool_use', id: 'toolu_s', name: 'order', input: {} }),
      delta(0, { type: 'input_json_delta', partial_json: '' }),
      delta(0, { type: 'input_json_delta', partial_json: '{"title":' }),
      delta(0, { type: 'input_json_delta', partial_json: '"x"}' }),
      {
        type: 'message_delta',
        delta: { stop_reason: stop, stop_sequence: null },
        usage: { output_tokens: 3 },
      },
    ];
    const { deltas, dropped, reader } = readAll(events('tool_use'), 'order');
    expect(deltas).toEqual([
      { k: 'text', t: '{"title":' },
      { k: 'text', t: '"x"}' },
    ]);
    expect(dropped).toEqual([]);
    expect(reader.finishReason).toBe('stop');
    expect(readAll(events('max_tokens'), 'order').reader.finishReason).toBe('length');
    // Without a structured output the same events are a tool call.
    expect(readAll(events('tool_use')).reader.finishReason).toBe('tool_calls');
  });
});

describe('Anthropic backend against the simulator', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  const weather = {
    type: 'function' as const,
    function: {
      name: 'weather',
      description: 'Current weather of a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };
  const now = { type: 'function' as const, function: { name: 'now' } };

  async function run(messages: ChatMessage[], params: Partial<GenerationParams> = {}) {
    sim ??= await startSimulator({ port: 0, ttftMs: 1, itlMs: 1 });
    const deltas: Delta[] = [];
    const dropped: string[] = [];
    const res = await createAnthropicBackend({ baseURL: sim.url, timeoutMs: 5000 }).generate(
      { kind: 'chat', model: DEFAULT_MODEL, messages, params: { max_tokens: 32, ...params } },
      {
        signal: new AbortController().signal,
        onDelta: (d) => deltas.push(d),
        onDropped: (w) => dropped.push(w),
      },
    );
    const transcript = new Transcript();
    transcript.add(deltas);
    return { res, deltas, dropped, transcript };
  }

  it('streams a tool call as tool deltas whose arguments parse to an object', async () => {
    const { res, deltas, dropped, transcript } = await run([{ role: 'user', content: 'Weather in Paris?' }], {
      tools: [weather],
      tool_choice: 'required',
    });
    expect(res.finishReason).toBe('tool_calls');
    expect(dropped).toEqual([]);
    const first = deltas.find((d) => d.k === 'tool');
    expect(first).toMatchObject({ k: 'tool', i: 0, name: 'weather', args: '' });
    expect(deltas.filter((d) => d.k === 'tool' && d.args).length).toBeGreaterThan(1);
    const [call] = transcript.toolCalls;
    expect(call?.id).toMatch(/.+/);
    expect(JSON.parse(call!.function.arguments)).toEqual({ city: expect.any(String) });
    expect(res.ttftMs).toBeGreaterThan(0);
  });

  it('numbers parallel calls 0, 1 and honours parallel_tool_calls: false', async () => {
    // The simulator calls two tools for tool_choice `any` (our `required`) unless told not to.
    const ask = (p: Partial<GenerationParams>) =>
      run([{ role: 'user', content: 'Weather and time?' }], {
        tools: [weather, now],
        tool_choice: 'required',
        ...p,
      });
    const parallel = await ask({});
    expect(parallel.transcript.toolCalls.map((c) => c.function.name)).toEqual(['weather', 'now']);
    expect(
      parallel.deltas.filter((d) => d.k === 'tool' && d.id !== undefined).map((d) => (d as { i: number }).i),
    ).toEqual([0, 1]);
    expect(new Set(parallel.transcript.toolCalls.map((c) => c.id)).size).toBe(2);
    const serial = await ask({ parallel_tool_calls: false });
    expect(serial.transcript.toolCalls.map((c) => c.function.name)).toEqual(['weather']);
  });

  it('answers a tool round trip (assistant tool_calls, then the tool message) with text', async () => {
    const asked = await run([{ role: 'user', content: 'Weather in Paris?' }], {
      tools: [weather],
      tool_choice: 'required',
    });
    const calls = asked.transcript.toolCalls;
    const { res, transcript } = await run(
      [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: 'function' as const,
            function: { ...c.function },
          })),
        },
        ...calls.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: '18°C, sunny' })),
      ],
      { tools: [weather] },
    );
    expect(transcript.toolCalls).toEqual([]);
    expect(transcript.text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(res.finishReason);
  });

  it('answers a json_schema response_format with JSON text that follows the schema, finish stop', async () => {
    const format = { type: 'json_schema' as const, json_schema: { name: 'order', schema: ORDER_SCHEMA } };
    const { res, deltas, dropped, transcript } = await run(
      [{ role: 'user', content: 'Summarize the order.' }],
      {
        max_tokens: 400,
        response_format: format,
      },
    );
    expect(res.finishReason).toBe('stop');
    expect(dropped).toEqual([]);
    expect(deltas.every((d) => d.k === 'text')).toBe(true);
    expect(deltas.length).toBeGreaterThan(2);
    expect(transcript.toolCalls).toEqual([]);
    const value = JSON.parse(transcript.text) as { items: unknown[] };
    expect(value).toEqual({ title: expect.any(String), status: 'open', items: expect.any(Array) });
    expect(value.items).toHaveLength(2);
    for (const item of value.items)
      expect(item).toEqual({ name: expect.any(String), qty: expect.any(Number) });
    expect(res.usage.completionTokens).toBe(deltas.length);
    // What the backend received: the schema as the forced tool's input_schema.
    const sent = sim!.requests().at(-1)!.body as { tools: unknown[]; tool_choice: unknown };
    expect(sent.tools).toEqual([
      { name: 'order', description: expect.any(String), input_schema: ORDER_SCHEMA },
    ]);
    expect(sent.tool_choice).toEqual({ type: 'tool', name: 'order' });

    const cut = await run([{ role: 'user', content: 'Summarize the order.' }], {
      max_tokens: 2,
      response_format: format,
    });
    expect(cut.res.finishReason).toBe('length');
    expect(transcript.text.startsWith(cut.transcript.text)).toBe(true);
  });

  it('answers json_object with a JSON object', async () => {
    const { res, transcript } = await run([{ role: 'user', content: 'Answer in JSON.' }], {
      response_format: { type: 'json_object' },
    });
    expect(res.finishReason).toBe('stop');
    expect(JSON.parse(transcript.text)).toEqual({});
  });

  it('streams thinking as reasoning deltas before the text, the last one with its signature', async () => {
    const { deltas, dropped, transcript } = await run([{ role: 'user', content: 'Think first.' }], {
      max_tokens: 64,
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
    expect(dropped).toEqual([]);
    expect(transcript.reasoning.length).toBeGreaterThan(0);
    expect(transcript.text.length).toBeGreaterThan(0);
    const lastReasoning = deltas.findLastIndex((d) => d.k === 'reasoning');
    const firstText = deltas.findIndex((d) => d.k === 'text');
    expect(lastReasoning).toBeLessThan(firstText);
    expect(deltas[lastReasoning]).toEqual({
      k: 'reasoning',
      t: '',
      sig: expect.stringMatching(/^[\w+/]{20,}=*$/),
    });
    expect(transcript.thinking).toEqual([
      {
        type: 'thinking',
        thinking: transcript.reasoning,
        signature: (deltas[lastReasoning] as { sig: string }).sig,
      },
    ]);
  });

  it('continues a tool loop with thinking only when the thinking goes back (the simulator checks, as Anthropic)', async () => {
    const thinking = { type: 'enabled' as const, budget_tokens: 1024 };
    const ask: ChatMessage = { role: 'user', content: 'Weather in Paris?' };
    const asked = await run([ask], { max_tokens: 64, tools: [weather], thinking });
    expect(asked.res.finishReason).toBe('tool_calls');
    const [block] = asked.transcript.thinking;
    if (block?.type !== 'thinking') throw new Error('expected a thinking block');
    expect(block.signature).toMatch(/.{20}/);
    const calls = asked.transcript.toolCalls;
    const turn = (thinking_blocks?: SignedThinking[]): ChatMessage[] => [
      ask,
      {
        role: 'assistant',
        content: null,
        reasoning_content: asked.transcript.reasoning,
        ...(thinking_blocks && { thinking_blocks }),
        tool_calls: calls.map((c) => ({ ...c, function: { ...c.function } })),
      },
      ...calls.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: '18°C, sunny' })),
    ];
    const answered = await run(turn([block]), { tools: [weather], thinking });
    expect(answered.transcript.text.length).toBeGreaterThan(0);
    const sent = sim!.requests().at(-1)!.body as { messages: { content: unknown[] }[] };
    expect(sent.messages[1]!.content[0]).toEqual(block);

    const refused = await run(turn(), { tools: [weather], thinking }).catch(
      (e: unknown) => e as BackendError,
    );
    expect(refused).toBeInstanceOf(BackendError);
    expect((refused as BackendError).type).toBe('backend_bad_request');
    expect((refused as BackendError).message).toMatch(/must start with a thinking block/);
    const forged = await run(turn([{ ...block, signature: 'Zm9yZ2Vk' }]), {
      tools: [weather],
      thinking,
    }).catch((e: unknown) => e as BackendError);
    expect((forged as BackendError).message).toMatch(/Invalid `signature`/);
    // Without thinking, no thinking is needed.
    const plain = await run(turn(), { tools: [weather] });
    expect(plain.transcript.text.length).toBeGreaterThan(0);
  });
});
