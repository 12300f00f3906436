import { describe, expect, it } from 'vitest';
import { type Delta, pushDelta, Transcript } from './deltas.ts';

const merged = (...ds: Delta[]) => {
  const out: Delta[] = [];
  for (const d of ds) pushDelta(out, d);
  return out;
};

describe('pushDelta (coalescing)', () => {
  it('merges neighbours of the same kind, concatenating text and logprobs', () => {
    expect(
      merged({ k: 'text', t: 'a', lp: [1] }, { k: 'text', t: 'b' }, { k: 'text', t: 'c', lp: [2] }),
    ).toEqual([{ k: 'text', t: 'abc', lp: [1, 2] }]);
    expect(merged({ k: 'reasoning', t: 'x' }, { k: 'reasoning', t: 'y' })).toEqual([
      { k: 'reasoning', t: 'xy' },
    ]);
  });

  it('never reorders: different kinds stay separate and in order', () => {
    expect(
      merged(
        { k: 'reasoning', t: 'r1' },
        { k: 'text', t: 't1' },
        { k: 'reasoning', t: 'r2' },
        { k: 'text', t: 't2' },
      ),
    ).toEqual([
      { k: 'reasoning', t: 'r1' },
      { k: 'text', t: 't1' },
      { k: 'reasoning', t: 'r2' },
      { k: 'text', t: 't2' },
    ]);
  });

  it('merges argument pieces of one tool call, not of two calls, and a new id starts a new call', () => {
    expect(
      merged(
        { k: 'tool', i: 0, id: 'a', name: 'f', args: '' },
        { k: 'tool', i: 0, args: '{"x"' },
        { k: 'tool', i: 0, args: ':1}' },
        { k: 'tool', i: 1, id: 'b', name: 'g' },
        { k: 'tool', i: 1, args: '{}' },
      ),
    ).toEqual([
      { k: 'tool', i: 0, id: 'a', name: 'f', args: '{"x":1}' },
      { k: 'tool', i: 1, id: 'b', name: 'g', args: '{}' },
    ]);
    expect(merged({ k: 'tool', i: 0, id: 'a' }, { k: 'tool', i: 0, id: 'b' })).toHaveLength(2);
  });

  it('a signature ends its thinking block: merged into it, and later reasoning starts a new delta', () => {
    expect(
      merged(
        { k: 'reasoning', t: 'a' },
        { k: 'reasoning', t: 'b' },
        { k: 'reasoning', t: '', sig: 's1' },
        { k: 'reasoning', t: 'c' },
        { k: 'reasoning', t: '', redacted: 'r' },
        { k: 'reasoning', t: 'd', sig: 's2' },
        { k: 'reasoning', t: '', redacted: 'q' },
        { k: 'reasoning', t: '', redacted: 'p' },
      ),
    ).toEqual([
      { k: 'reasoning', t: 'ab', sig: 's1' },
      { k: 'reasoning', t: 'c' },
      { k: 'reasoning', t: '', redacted: 'r' },
      { k: 'reasoning', t: 'd', sig: 's2' },
      { k: 'reasoning', t: '', redacted: 'q' },
      { k: 'reasoning', t: '', redacted: 'p' },
    ]);
  });

  it('does not mutate the deltas it was given', () => {
    const first: Delta = { k: 'text', t: 'a' };
    merged(first, { k: 'text', t: 'b' });
    expect(first).toEqual({ k: 'text', t: 'a' });
  });
});

describe('Transcript', () => {
  it('assembles text, reasoning, logprobs and tool calls by index', () => {
    const t = new Transcript();
    t.add([
      { k: 'reasoning', t: 'think' },
      { k: 'text', t: 'hi', lp: [{ token: 'hi' }] },
      { k: 'tool', i: 1, id: 'c2', name: 'g', args: '{' },
      { k: 'tool', i: 0, id: 'c1', name: 'f', args: '{}' },
    ]);
    t.add([{ k: 'tool', i: 1, args: '}' }]);
    expect(t.text).toBe('hi');
    expect(t.reasoning).toBe('think');
    expect(t.thinking).toEqual([{ type: 'thinking', thinking: 'think', signature: '' }]);
    expect(t.logprobs).toEqual([{ token: 'hi' }]);
    expect(t.toolCalls).toEqual([
      { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
      { id: 'c2', type: 'function', function: { name: 'g', arguments: '{}' } },
    ]);
  });

  it('keeps thinking blocks apart at their signatures, redacted ones in place; all the text in reasoning', () => {
    const t = new Transcript();
    t.add([
      { k: 'reasoning', t: 'one ' },
      { k: 'reasoning', t: 'two', sig: 's1' },
    ]);
    t.add([
      { k: 'reasoning', t: '', redacted: 'opaque' },
      { k: 'text', t: 'x' },
    ]);
    t.add([
      { k: 'reasoning', t: 'three' },
      { k: 'reasoning', t: '' },
      { k: 'reasoning', t: '', sig: 's2' },
    ]);
    expect(t.thinking).toEqual([
      { type: 'thinking', thinking: 'one two', signature: 's1' },
      { type: 'redacted_thinking', data: 'opaque' },
      { type: 'thinking', thinking: 'three', signature: 's2' },
    ]);
    expect(t.reasoning).toBe('one twothree');
    expect(new Transcript().thinking).toEqual([]);
  });
});
