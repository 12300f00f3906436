import { describe, expect, it } from 'vitest';
import { ChatMessage, isEmptyMessage } from './messages.ts';

const issues = (value: unknown) => {
  const r = ChatMessage.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('ChatMessage (OpenAI Chat Completions)', () => {
  it('accepts content parts, assistant tool calls with null content, and tool results', () => {
    expect(
      issues({
        role: 'user',
        content: [
          { type: 'text', text: 'what is this?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
        ],
      }),
    ).toEqual([]);
    expect(
      issues({
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
      }),
    ).toEqual([]);
    expect(issues({ role: 'tool', tool_call_id: 'call_1', content: '42' })).toEqual([]);
  });

  it("an assistant's thinking_blocks: signed thinking and redacted thinking, their fields only", () => {
    const m = ChatMessage.parse({
      role: 'assistant',
      content: 'Hi.',
      thinking_blocks: [
        { type: 'thinking', thinking: 'Hm.', signature: 'c2ln', cache_control: { type: 'ephemeral' } },
        { type: 'redacted_thinking', data: 'opaque' },
      ],
    });
    expect(m).toEqual({
      role: 'assistant',
      content: 'Hi.',
      thinking_blocks: [
        { type: 'thinking', thinking: 'Hm.', signature: 'c2ln' },
        { type: 'redacted_thinking', data: 'opaque' },
      ],
    });
    const blocks = (thinking_blocks: unknown) =>
      issues({ role: 'assistant', content: 'Hi.', thinking_blocks });
    expect(blocks([{ type: 'thinking', thinking: 'Hm.', signature: '' }])[0]).toMatch(
      /^thinking_blocks\.0\.signature: /,
    );
    expect(blocks([{ type: 'thinking', thinking: 'Hm.' }])[0]).toMatch(/^thinking_blocks\.0\.signature: /);
    expect(blocks([{ type: 'text', text: 'x' }])).toHaveLength(1);
    expect(blocks(null)).toEqual([]);
  });

  it('keeps fields it does not know (passed to the backend unchanged)', () => {
    const m = ChatMessage.parse({ role: 'user', content: 'x', cache_control: { type: 'ephemeral' } });
    expect(m).toMatchObject({ cache_control: { type: 'ephemeral' } });
  });

  it('names what is wrong: unknown part types, URL schemes the gateway will not pass, a tool result without id', () => {
    expect(issues({ role: 'user', content: [{ type: 'file', file: {} }] })[0]).toContain(
      'content part type "file" is not supported in user messages (supported: text, image_url, input_audio)',
    );
    expect(
      issues({ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] })[0],
    ).toContain('must be an http(s) URL or a base64 data: URL');
    expect(issues({ role: 'tool', content: '42' })[0]).toContain('tool_call_id');
    expect(
      issues({ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x' } }] })[0],
    ).toContain('not supported in system messages');
  });

  it('a message is empty only when it carries no text, part or tool call', () => {
    expect(isEmptyMessage(ChatMessage.parse({ role: 'user', content: '  ' }))).toBe(true);
    expect(isEmptyMessage(ChatMessage.parse({ role: 'assistant', content: null }))).toBe(true);
    expect(
      isEmptyMessage(
        ChatMessage.parse({
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } }],
        }),
      ),
    ).toBe(false);
    expect(
      isEmptyMessage(
        ChatMessage.parse({
          role: 'user',
          content: [{ type: 'image_url', image_url: { url: 'https://x' } }],
        }),
      ),
    ).toBe(false);
  });
});
