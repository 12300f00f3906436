import { describe, expect, it } from 'vitest';
import { OutputText } from './output-text.ts';
import { estimatePromptTokens, estimateTextTokens, naturalLength, promptHash, TokenSource } from './text.ts';

const take = (hash: number, n: number) => {
  const source = new TokenSource(hash);
  return Array.from({ length: n }, () => source.next());
};

describe('text generator', () => {
  it('is deterministic per prompt and seed', () => {
    const parts = [{ role: 'user', text: 'hello' }];
    expect(promptHash(parts, 1)).toBe(promptHash(parts, 1));
    expect(promptHash(parts, 1)).not.toBe(promptHash(parts, 2));
    expect(promptHash(parts)).not.toBe(promptHash([{ role: 'user', text: 'hello!' }]));
    const tokens = take(promptHash(parts), 50);
    expect(take(promptHash(parts), 50)).toEqual(tokens);
    expect(tokens[0]).toMatch(/^[a-z]+$/);
    for (const t of tokens.slice(1)) expect(t).toMatch(/^ [a-z]+$/);
  });

  it('picks natural lengths in 16..256 unless fixed', () => {
    for (let h = 0; h < 2000; h += 7) {
      const n = naturalLength(h, 0);
      expect(n).toBeGreaterThanOrEqual(16);
      expect(n).toBeLessThanOrEqual(256);
    }
    expect(naturalLength(123, 40)).toBe(40);
  });

  it('estimates prompt tokens as chars/4 plus 3 per message, plus fixed media tokens', () => {
    expect(estimatePromptTokens([{ role: 'user', text: 'abcdefghi' }])).toBe(3 + 3);
    expect(estimatePromptTokens([{ role: 'user', text: 'abcdefghi', media: 'x', mediaTokens: 256 }])).toBe(
      262,
    );
    expect(estimateTextTokens('')).toBe(1);
    expect(estimateTextTokens('abcdefghi')).toBe(3);
  });

  it('hashes media, leaving text-only conversations as they were', () => {
    const text = [{ role: 'user', text: 'look' }];
    expect(promptHash([{ ...text[0]!, media: '' }])).toBe(promptHash(text));
    const a = promptHash([{ ...text[0]!, media: 'https://x/a.png' }]);
    expect(a).not.toBe(promptHash(text));
    expect(a).not.toBe(promptHash([{ ...text[0]!, media: 'https://x/b.png' }]));
  });
});

describe('OutputText', () => {
  it('passes tokens through without stop strings', () => {
    const out = new OutputText([]);
    expect(out.push('a')).toBe('a');
    expect(out.push(' b')).toBe(' b');
    expect(out.rest()).toBe('');
  });

  it('holds back a possible stop-string prefix and drops the stop string', () => {
    const out = new OutputText([' cat sat']);
    const sent = [' the', ' cat', ' sat'].map((t) => out.push(t));
    expect(out.stopSequence).toBe(' cat sat');
    expect(sent.join('') + out.rest()).toBe(' the');
    expect(out.text).toBe(' the');
  });

  it('flushes held-back text at the end', () => {
    const out = new OutputText(['zzz']);
    const sent = ['a', ' b', ' c'].map((t) => out.push(t)).join('');
    expect(sent + out.rest()).toBe('a b c');
    expect(out.stopSequence).toBeNull();
  });
});
