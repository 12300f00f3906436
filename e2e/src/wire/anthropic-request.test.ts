import { fromMessagesRequest, MessagesRequest } from '@llmgw/api';
import { ChatMessage, GenerationParams } from '@llmgw/protocol';
// The worker's half of the translation, to check that the two compose; the worker package exports
// only its service, so the test reaches into its source.
import { toAnthropicRequest } from '@llmgw/worker';
import { describe, expect, it } from 'vitest';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/** Parses like the route does, translates, and checks the result against the job's schemas. */
function translate(body: unknown) {
  const out = fromMessagesRequest(MessagesRequest.parse(body));
  for (const m of out.messages) expect(ChatMessage.parse(m)).toEqual(m);
  expect(GenerationParams.parse(out.params)).toEqual(out.params);
  return out;
}

/** The first validation issue, as the api reports it (`path: message`). */
function refusal(body: unknown): string {
  const r = MessagesRequest.safeParse(body);
  expect(r.success).toBe(false);
  const issue = r.error!.issues[0]!;
  return `${issue.path.join('.')}: ${issue.message}`;
}

const base = { max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };

const weatherTool = {
  name: 'weather',
  description: 'Current weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

/** A Claude Code-like conversation: system blocks, a picture, a tool round trip with thinking. */
const roundTrip = {
  model: 'claude-sonnet-4',
  max_tokens: 1024,
  system: [
    { type: 'text', text: 'You are a weather bot.', cache_control: { type: 'ephemeral' } },
    { type: 'text', text: 'Answer in one line.' },
  ],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Where is this, and what is the weather there?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/paris.jpg' } },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'Looks like Paris.', signature: 'c2lnbmF0dXJl' },
        { type: 'text', text: 'That is Paris; checking.' },
        { type: 'tool_use', id: 'toolu_01', name: 'weather', input: { city: 'Paris', units: { temp: 'C' } } },
        { type: 'tool_use', id: 'toolu_02', name: 'weather', input: { city: 'Versailles' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_01', content: '18°C, sunny' },
        { type: 'tool_result', tool_use_id: 'toolu_02', content: [{ type: 'text', text: '17°C, cloudy' }] },
        { type: 'text', text: 'And tomorrow?' },
      ],
    },
  ],
  tools: [weatherTool],
  tool_choice: { type: 'auto', disable_parallel_tool_use: true },
  metadata: { user_id: 'user-42' },
  stop_sequences: ['\n\nHuman:'],
  temperature: 0.3,
  top_k: 20,
  thinking: { type: 'enabled', budget_tokens: 512 },
  stream: true,
};

describe('MessagesRequest', () => {
  it('accepts a Claude Code-like request, with fields it does not relay (cache_control)', () => {
    expect(MessagesRequest.safeParse(roundTrip).success).toBe(true);
  });

  it('requires max_tokens and at least one message, and defaults stream to false', () => {
    expect(refusal({ messages: base.messages })).toMatch(/^max_tokens: /);
    expect(refusal({ ...base, max_tokens: 0 })).toMatch(/^max_tokens: /);
    expect(refusal({ ...base, messages: [] })).toBe('messages: must contain at least one message');
    expect(MessagesRequest.parse(base).stream).toBe(false);
    expect(MessagesRequest.parse(base).model).toBeUndefined();
  });

  it('takes max_tokens as an upper bound: 32000 from Claude Code is capped at the gateway limit', () => {
    expect(
      fromMessagesRequest(MessagesRequest.parse({ ...base, max_tokens: 32_000 })).params.max_tokens,
    ).toBe(4096);
    expect(fromMessagesRequest(MessagesRequest.parse(base)).params.max_tokens).toBe(64);
  });

  it('names an unsupported content block type and where it is', () => {
    const doc = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } };
    expect(
      refusal({ ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'read' }, doc] }] }),
    ).toBe(
      'messages.0.content.1.type: content block type "document" is not supported in user messages (supported: text, image, tool_result)',
    );
    const serverTool = { type: 'server_tool_use', id: 's1', name: 'web_search', input: {} };
    expect(refusal({ ...base, messages: [{ role: 'assistant', content: [serverTool] }] })).toBe(
      'messages.0.content.0.type: content block type "server_tool_use" is not supported in assistant messages (supported: text, tool_use, thinking, redacted_thinking)',
    );
    expect(
      refusal({
        ...base,
        messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }],
      }),
    ).toMatch(/"tool_use" is not supported in user messages/);
    expect(refusal({ ...base, messages: [{ role: 'user', content: 5 }] })).toBe(
      'messages.0.content: must be a string or an array of content blocks',
    );
  });

  it('refuses server tools by their type, not for a missing input_schema', () => {
    expect(refusal({ ...base, tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).toBe(
      'tools.0.type: tool type "web_search_20250305" is not supported: only custom tools (name, description, input_schema) can be relayed',
    );
    expect(refusal({ ...base, tools: [{ name: 'x' }] })).toMatch(/^tools\.0\.input_schema: /);
    expect(MessagesRequest.safeParse({ ...base, tools: [{ ...weatherTool, type: 'custom' }] }).success).toBe(
      true,
    );
  });

  it('checks sampling ranges, tool_choice and thinking shapes', () => {
    expect(refusal({ ...base, temperature: 1.5 })).toMatch(/^temperature: /);
    expect(refusal({ ...base, tool_choice: { type: 'tool' } })).toMatch(/^tool_choice\.name: /);
    expect(refusal({ ...base, thinking: { type: 'enabled' } })).toMatch(/^thinking\.budget_tokens: /);
    expect(refusal({ ...base, messages: [{ role: 'system', content: 'x' }] })).toMatch(
      /^messages\.0\.role: /,
    );
  });
});

describe('fromMessagesRequest', () => {
  it('translates a conversation with system, images, thinking and a tool round trip', () => {
    const out = translate(roundTrip);
    expect(out.model).toBe('claude-sonnet-4');
    expect(out.stream).toBe(true);
    expect(out.messages).toEqual([
      { role: 'system', content: 'You are a weather bot.\n\nAnswer in one line.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Where is this, and what is the weather there?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/paris.jpg' } },
        ],
      },
      {
        role: 'assistant',
        content: 'That is Paris; checking.',
        reasoning_content: 'Looks like Paris.',
        thinking_blocks: [{ type: 'thinking', thinking: 'Looks like Paris.', signature: 'c2lnbmF0dXJl' }],
        tool_calls: [
          {
            id: 'toolu_01',
            type: 'function',
            function: { name: 'weather', arguments: '{"city":"Paris","units":{"temp":"C"}}' },
          },
          {
            id: 'toolu_02',
            type: 'function',
            function: { name: 'weather', arguments: '{"city":"Versailles"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_01', content: '18°C, sunny' },
      { role: 'tool', tool_call_id: 'toolu_02', content: '17°C, cloudy' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
    expect(out.params).toEqual({
      max_tokens: 1024,
      stop: ['\n\nHuman:'],
      temperature: 0.3,
      top_k: 20,
      user: 'user-42',
      tools: [
        {
          type: 'function',
          function: {
            name: 'weather',
            description: 'Current weather of a city',
            parameters: weatherTool.input_schema,
          },
        },
      ],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      thinking: { type: 'enabled', budget_tokens: 512 },
    });
  });

  it('keeps plain strings plain, and tool calls without text have null content', () => {
    const out = translate({
      ...base,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'time?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'now', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1' }] },
        { role: 'assistant', content: 'Noon.' },
      ],
    });
    expect(out.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'time?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 't1', type: 'function', function: { name: 'now', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 't1', content: '' },
      { role: 'assistant', content: 'Noon.' },
    ]);
  });

  it('marks error results, moves result images after the results, keeps redacted thinking', () => {
    const out = translate({
      ...base,
      messages: [
        { role: 'user', content: 'Show me both files.' },
        {
          role: 'assistant',
          content: [
            { type: 'redacted_thinking', data: 'opaque' },
            { type: 'tool_use', id: 'r1', name: 'read', input: { path: 'a.png' } },
            { type: 'tool_use', id: 'r2', name: 'read', input: { path: 'b.txt' } },
          ],
        },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 'r1',
              content: [
                { type: 'text', text: 'a.png:' },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
              ],
            },
            { type: 'tool_result', tool_use_id: 'r2', content: 'no such file', is_error: true },
            { type: 'text', text: 'Well?' },
          ],
        },
      ],
    });
    expect(out.messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: null,
        thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }],
        tool_calls: [
          { id: 'r1', type: 'function', function: { name: 'read', arguments: '{"path":"a.png"}' } },
          { id: 'r2', type: 'function', function: { name: 'read', arguments: '{"path":"b.txt"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'r1', content: 'a.png:' },
      { role: 'tool', tool_call_id: 'r2', content: 'Error: no such file' },
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'text', text: 'Well?' },
        ],
      },
    ]);
  });

  it('keeps signed thinking blocks in order, exactly; an unsigned one is reasoning text only', () => {
    const turn = (content: unknown[]) =>
      translate({
        ...base,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content },
        ],
      }).messages[1];
    expect(
      turn([
        { type: 'thinking', thinking: 'One.', signature: 'c2lnMQ==', cache_control: { type: 'ephemeral' } },
        { type: 'redacted_thinking', data: 'EmwKAhgB' },
        { type: 'thinking', thinking: 'Two.', signature: 'c2lnMg==' },
        { type: 'text', text: 'Hello.' },
      ]),
    ).toEqual({
      role: 'assistant',
      content: 'Hello.',
      reasoning_content: 'One.\n\nTwo.',
      thinking_blocks: [
        { type: 'thinking', thinking: 'One.', signature: 'c2lnMQ==' },
        { type: 'redacted_thinking', data: 'EmwKAhgB' },
        { type: 'thinking', thinking: 'Two.', signature: 'c2lnMg==' },
      ],
    });
    // The `signature: ""` of an answer from an OpenAI-compatible backend proves nothing to Anthropic.
    for (const unsigned of [{ signature: '' }, {}]) {
      expect(
        turn([
          { type: 'thinking', thinking: 'Hm.', ...unsigned },
          { type: 'text', text: 'Hello.' },
        ]),
      ).toEqual({ role: 'assistant', content: 'Hello.', reasoning_content: 'Hm.' });
    }
  });

  it('maps every tool_choice', () => {
    const choice = (tool_choice: unknown) => translate({ ...base, tools: [weatherTool], tool_choice }).params;
    expect(choice({ type: 'auto' })).toMatchObject({ tool_choice: 'auto' });
    expect(choice({ type: 'auto' }).parallel_tool_calls).toBeUndefined();
    expect(choice({ type: 'any' })).toMatchObject({ tool_choice: 'required' });
    expect(choice({ type: 'none' })).toMatchObject({ tool_choice: 'none' });
    expect(choice({ type: 'tool', name: 'weather', disable_parallel_tool_use: true })).toMatchObject({
      tool_choice: { type: 'function', function: { name: 'weather' } },
      parallel_tool_calls: false,
    });
    expect(translate({ ...base, thinking: { type: 'disabled' } }).params.thinking).toEqual({
      type: 'disabled',
    });
  });
});

describe('fromMessagesRequest then the Anthropic backend', () => {
  it('gives back the same request: blocks, tool ids and inputs', () => {
    const { model, messages, params } = translate(roundTrip);
    const back = toAnthropicRequest({ kind: 'chat', model: model!, messages, params });
    expect(back).toEqual({
      model: 'claude-sonnet-4',
      max_tokens: 1024,
      stream: true,
      system: 'You are a weather bot.\n\nAnswer in one line.',
      messages: [
        roundTrip.messages[0],
        // The whole turn, its signed thinking first (thinking is on).
        roundTrip.messages[1],
        {
          role: 'user',
          content: [
            roundTrip.messages[2]!.content[0],
            // Text blocks of a result come back as its text: the same thing said in a string.
            { type: 'tool_result', tool_use_id: 'toolu_02', content: '17°C, cloudy' },
            roundTrip.messages[2]!.content[2],
          ],
        },
      ],
      tools: [weatherTool],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-42' },
      stop_sequences: ['\n\nHuman:'],
      temperature: 0.3,
      top_k: 20,
      thinking: { type: 'enabled', budget_tokens: 512 },
    });
  });
});
