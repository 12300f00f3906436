import { type Delta, type DoneEvent, Transcript } from '@llmgw/protocol';
import { describe, expect, it } from 'vitest';
import { anthropicBody, anthropicFrames } from './anthropic.ts';
import { openAIChatFrames } from './openai-chat.ts';
import { seedFrames } from './seed.ts';

const idn = { id: 'msg_1', model: 'claude-test' };
const done: DoneEvent = {
  id: 'job',
  seq: 9,
  attempt: 1,
  type: 'done',
  finishReason: 'tool_calls',
  usage: { promptTokens: 5, completionTokens: 7 },
};

/** An answer as an Anthropic backend's worker publishes it: two signed thoughts around a redacted one. */
const signed: Delta[] = [
  { k: 'reasoning', t: 'Paris?', sig: 'c2lnMQ==' },
  { k: 'reasoning', t: '', redacted: 'EmwKAhgB' },
  { k: 'reasoning', t: 'Yes' },
  { k: 'reasoning', t: '.', sig: 'c2lnMg==' },
  { k: 'tool', i: 0, id: 'toolu_1', name: 'weather', args: '{"city":"Paris"}' },
];

/** The SSE events of a rendition, as `[event, data]` pairs. */
function events(sse: string): [string, Record<string, unknown>][] {
  return sse
    .split('\n\n')
    .filter((f) => f !== '')
    .map((f) => {
      const [name, data] = f.split('\n');
      return [name!.slice('event: '.length), JSON.parse(data!.slice('data: '.length))];
    });
}

describe('/v1/messages thinking signatures', () => {
  it('streams each signature as signature_delta right before its block stops, redacted thinking whole', () => {
    const f = anthropicFrames(idn, 'req_1');
    const out = events(f.deltas(signed) + f.done(done));
    const blocks = out.filter(([name]) => name.startsWith('content_block')).map(([, data]) => data);
    expect(blocks).toEqual([
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Paris?' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'c2lnMQ==' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'redacted_thinking', data: 'EmwKAhgB' },
      },
      { type: 'content_block_stop', index: 1 },
      {
        type: 'content_block_start',
        index: 2,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      },
      { type: 'content_block_delta', index: 2, delta: { type: 'thinking_delta', thinking: 'Yes' } },
      { type: 'content_block_delta', index: 2, delta: { type: 'thinking_delta', thinking: '.' } },
      { type: 'content_block_delta', index: 2, delta: { type: 'signature_delta', signature: 'c2lnMg==' } },
      { type: 'content_block_stop', index: 2 },
      {
        type: 'content_block_start',
        index: 3,
        content_block: { type: 'tool_use', id: 'toolu_1', name: 'weather', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 3,
        delta: { type: 'input_json_delta', partial_json: '{"city":"Paris"}' },
      },
      { type: 'content_block_stop', index: 3 },
    ]);
  });

  it('a signature arriving alone (after the thoughts were published) still lands in their block', () => {
    const f = anthropicFrames(idn, 'req_1');
    const out = events(
      f.deltas([{ k: 'reasoning', t: 'Hm' }]) +
        f.deltas([{ k: 'reasoning', t: '', sig: 'c2ln' }]) +
        f.deltas([{ k: 'text', t: 'Hi' }]),
    ).map(([, data]) => data);
    expect(out.map((e) => e.type)).toEqual([
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
    ]);
    expect(out[2]).toMatchObject({ index: 0, delta: { type: 'signature_delta', signature: 'c2ln' } });
    expect(out[4]).toMatchObject({ index: 1, content_block: { type: 'text' } });
  });

  it('the non-streaming message has every thinking block with its signature, then the answer', () => {
    const t = new Transcript();
    t.add(signed);
    expect(anthropicBody(idn, t, done).content).toEqual([
      { type: 'thinking', thinking: 'Paris?', signature: 'c2lnMQ==' },
      { type: 'redacted_thinking', data: 'EmwKAhgB' },
      { type: 'thinking', thinking: 'Yes.', signature: 'c2lnMg==' },
      { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
    ]);
    // Without signatures (an OpenAI-compatible backend's reasoning): one block, signature "".
    const plain = new Transcript();
    plain.add([
      { k: 'reasoning', t: 'a' },
      { k: 'reasoning', t: 'b' },
      { k: 'text', t: 'Hi' },
    ]);
    expect(anthropicBody(idn, plain, { ...done, finishReason: 'stop' }).content).toEqual([
      { type: 'thinking', thinking: 'ab', signature: '' },
      { type: 'text', text: 'Hi' },
    ]);
  });

  it('the OpenAI-shaped formats send the thoughts, and nothing for a signature or redacted thinking', () => {
    const chat = openAIChatFrames({ ...idn, created: 1 }, false, 'req_1').deltas(signed);
    expect(chat).not.toContain('c2ln');
    expect(chat).not.toContain('EmwKAhgB');
    expect(chat.match(/"reasoning_content":/g)).toHaveLength(3);
    const seed = seedFrames('req_1').deltas(signed);
    expect(seed).not.toContain('c2ln');
    expect(seed).not.toContain('EmwKAhgB');
    expect(seed.match(/"reasoning":/g)).toHaveLength(3);
  });
});
