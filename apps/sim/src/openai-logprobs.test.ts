import { DEFAULT_MODEL } from '@llmgw/config';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidates } from './logprobs.ts';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, post, readSse } from './test-helpers.ts';

interface Entry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const messages = [{ role: 'user' as const, content: 'Count to ten.' }];

describe('logprobs on /v1/chat/completions', () => {
  let sim: Simulator;
  let client: OpenAI;
  let url: string;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 2, itlMs: 1 });
    client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    url = `${sim.url}/v1/chat/completions`;
  });
  afterAll(() => sim.close());

  it('puts one entry per token in each content chunk, with top_logprobs sorted, chosen first', async () => {
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 6,
      logprobs: true,
      top_logprobs: 3,
      stream: true,
    });
    const chunks = chunksOf(await readSse(res));
    expect(chunks[0]!.choices[0]!.logprobs).toBeNull();
    const tokens = chunks.slice(1, -1);
    expect(tokens).toHaveLength(6);
    for (const c of tokens) {
      const choice = c.choices[0]! as unknown as {
        delta: { content: string };
        logprobs: { content: Entry[] };
      };
      expect(choice.logprobs.content).toHaveLength(1);
      const e = choice.logprobs.content[0]!;
      expect(e.token).toBe(choice.delta.content);
      expect(e.bytes).toEqual([...Buffer.from(e.token, 'utf8')]);
      expect(e.logprob).toBeLessThan(0);
      expect(e.top_logprobs).toHaveLength(3);
      expect(e.top_logprobs[0]).toEqual({ token: e.token, logprob: e.logprob, bytes: e.bytes });
      const lps = e.top_logprobs.map((t) => t.logprob);
      expect([...lps].sort((a, b) => b - a)).toEqual(lps);
      expect(new Set(lps).size).toBe(3);
      expect(new Set(e.top_logprobs.map((t) => t.token)).size).toBe(3);
      for (const t of e.top_logprobs) expect(t.bytes).toEqual([...Buffer.from(t.token, 'utf8')]);
    }
    expect(chunks.at(-1)!.choices[0]!.logprobs).toBeNull();
  });

  it('returns choices[0].logprobs.content without streaming, the same values; null without logprobs', async () => {
    const completion = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 6,
      logprobs: true,
    });
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(6);
    expect(content.map((e) => e.token).join('')).toBe(completion.choices[0]!.message.content);
    for (const e of content) expect(e.top_logprobs).toEqual([]);

    const stream = client.chat.completions.stream({
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 6,
      logprobs: true,
    });
    const streamed = (await stream.finalChatCompletion()).choices[0]!.logprobs!.content!;
    expect(streamed).toEqual(content);

    const plain = await client.chat.completions.create({ model: DEFAULT_MODEL, messages, max_tokens: 2 });
    expect(plain.choices[0]!.logprobs).toBeNull();
  });

  it('holds logprobs back with the text for stop strings, and sends the rest with the final chunk', async () => {
    const full = await client.chat.completions.create({ model: DEFAULT_MODEL, messages, max_tokens: 12 });
    const words = full.choices[0]!.message.content!.split(' ');
    const stop = ` ${words[4]} ${words[5]}`;
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 12,
      stop,
      logprobs: true,
      stream: true,
    });
    const chunks = chunksOf(await readSse(res));
    const entries = chunks.flatMap(
      (c) => (c.choices[0]!.logprobs as unknown as { content: Entry[] } | null)?.content ?? [],
    );
    // Every generated token, the one completing the stop string included.
    expect(entries.map((e) => e.token)).toEqual(words.slice(0, 6).map((w, i) => (i === 0 ? w : ` ${w}`)));
    // A chunk never carries text whose token's entry has not been sent yet.
    let text = '';
    let sent = '';
    for (const c of chunks) {
      text += c.choices[0]!.delta.content ?? '';
      sent += ((c.choices[0]!.logprobs as unknown as { content: Entry[] } | null)?.content ?? [])
        .map((e) => e.token)
        .join('');
      expect(sent.startsWith(text)).toBe(true);
    }
    expect(text).toBe(words.slice(0, 4).join(' '));
    const last = chunks.at(-1)!.choices[0]! as unknown as { logprobs: { content: Entry[] } };
    expect(last.logprobs.content.at(-1)!.token).toBe(` ${words[5]}`);
  });

  it('derives candidates deterministically: distinct tokens, strictly falling logprobs', () => {
    const a = candidates(123, 4, ' word', 20);
    expect(a).toEqual(candidates(123, 4, ' word', 20));
    expect(a).toHaveLength(20);
    expect(a[0]!.token).toBe(' word');
    expect(new Set(a.map((c) => c.token)).size).toBe(20);
    for (const c of a) expect(c.token).toMatch(/^ [a-z]+$/);
    for (let i = 1; i < a.length; i++) expect(a[i]!.logprob).toBeLessThan(a[i - 1]!.logprob);
    expect(candidates(123, 5, ' word', 1)[0]!.logprob).not.toBe(a[0]!.logprob);
  });
});
