import { DEFAULT_MODEL } from '@llmgw/config';
import { BadRequestError, OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { post, readSse } from './test-helpers.ts';

const prompt = 'Once upon a time';

interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

interface CompletionChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: {
    index: number;
    text: string;
    logprobs: LegacyLogprobs | null;
    finish_reason: string | null;
    stop_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

describe('POST /v1/completions', () => {
  let sim: Simulator;
  let client: OpenAI;
  let url: string;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 2, itlMs: 1 });
    client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    url = `${sim.url}/v1/completions`;
  });
  afterAll(() => sim.close());

  const streamChunks = async (body: Record<string, unknown>) => {
    const read = await readSse(await post(url, { model: DEFAULT_MODEL, prompt, stream: true, ...body }));
    expect(read.error).toBeUndefined();
    expect(read.events.at(-1)?.data).toBe('[DONE]');
    return read.events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as CompletionChunk);
  };

  it('answers a text_completion with 16 tokens by default, deterministic per prompt and seed', async () => {
    const a = await client.completions.create({ model: DEFAULT_MODEL, prompt });
    expect(a.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(a.object).toBe('text_completion');
    expect(a.model).toBe(DEFAULT_MODEL);
    const choice = a.choices[0]!;
    expect(choice.index).toBe(0);
    expect(choice.finish_reason).toBe('length');
    expect(choice.logprobs).toBeNull();
    expect((choice as unknown as { stop_reason: null }).stop_reason).toBeNull();
    expect(choice.text.split(' ')).toHaveLength(16);
    // 16 characters: 4 tokens, no chat template.
    expect(a.usage).toEqual({ prompt_tokens: 4, completion_tokens: 16, total_tokens: 20 });

    const b = await client.completions.create({ model: DEFAULT_MODEL, prompt: [prompt] });
    expect(b.choices[0]!.text).toBe(choice.text);
    const seeded = await client.completions.create({ model: DEFAULT_MODEL, prompt, seed: 3 });
    expect(seeded.choices[0]!.text).not.toBe(choice.text);
  });

  it('streams one chunk per token, a final chunk, the usage chunk, [DONE]; the SDK reads it', async () => {
    const chunks = await streamChunks({ max_tokens: 5, stream_options: { include_usage: true } });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    for (const c of chunks) {
      expect(c.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
      expect(c.object).toBe('text_completion');
      expect(c.model).toBe(DEFAULT_MODEL);
    }
    const tokens = chunks.slice(0, 5);
    for (const c of tokens) {
      expect(c.choices).toEqual([
        {
          index: 0,
          text: expect.stringMatching(/^ ?[a-z]+$/),
          logprobs: null,
          finish_reason: null,
          stop_reason: null,
        },
      ]);
      expect(c.usage).toBeNull();
    }
    expect(chunks[5]!.choices[0]).toEqual({
      index: 0,
      text: '',
      logprobs: null,
      finish_reason: 'length',
      stop_reason: null,
    });
    expect(chunks[6]).toMatchObject({
      choices: [],
      usage: { completion_tokens: 5, prompt_tokens: 4, total_tokens: 9 },
    });
    expect(chunks).toHaveLength(7);

    const stream = await client.completions.create({
      model: DEFAULT_MODEL,
      prompt,
      max_tokens: 5,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(tokens.map((c) => c.choices[0]!.text).join(''));
    expect(finish).toBe('length');
    const json = await client.completions.create({ model: DEFAULT_MODEL, prompt, max_tokens: 5 });
    expect(json.choices[0]!.text).toBe(text);
  });

  it('echoes the prompt before the output, streamed in the first chunk', async () => {
    const plain = await client.completions.create({ model: DEFAULT_MODEL, prompt, max_tokens: 4 });
    const echoed = await client.completions.create({
      model: DEFAULT_MODEL,
      prompt,
      max_tokens: 4,
      echo: true,
    });
    expect(echoed.choices[0]!.text).toBe(prompt + plain.choices[0]!.text);
    expect(echoed.usage?.completion_tokens).toBe(4);
    const chunks = await streamChunks({ max_tokens: 4, echo: true });
    expect(chunks[0]!.choices[0]!.text.startsWith(prompt)).toBe(true);
    expect(chunks[0]!.choices[0]!.text.length).toBeGreaterThan(prompt.length);
    expect(chunks.map((c) => c.choices[0]!.text).join('')).toBe(echoed.choices[0]!.text);
  });

  it('stops before a stop string, with stop_reason, streamed and not', async () => {
    const full = (await client.completions.create({ model: DEFAULT_MODEL, prompt, max_tokens: 20 }))
      .choices[0]!.text;
    const stop = ` ${full.split(' ')[5]}`;
    const expected = full.slice(0, full.indexOf(stop));
    const json = await client.completions.create({ model: DEFAULT_MODEL, prompt, max_tokens: 20, stop });
    expect(json.choices[0]!.text).toBe(expected);
    expect(json.choices[0]!.finish_reason).toBe('stop');
    const chunks = await streamChunks({ max_tokens: 20, stop: [stop] });
    expect(chunks.map((c) => c.choices[0]!.text).join('')).toBe(expected);
    expect(chunks.at(-1)!.choices[0]).toMatchObject({ finish_reason: 'stop', stop_reason: stop });
  });

  it('returns legacy logprobs: tokens, token_logprobs, top_logprobs dicts and text offsets', async () => {
    const json = await client.completions.create({
      model: DEFAULT_MODEL,
      prompt,
      max_tokens: 4,
      logprobs: 2,
    });
    const lp = json.choices[0]!.logprobs as unknown as LegacyLogprobs;
    const text = json.choices[0]!.text;
    expect(lp.tokens.join('')).toBe(text);
    expect(lp.token_logprobs).toHaveLength(4);
    let offset = 0;
    lp.tokens.forEach((token, i) => {
      expect(lp.text_offset[i]).toBe(offset);
      offset += token.length;
      const top = lp.top_logprobs[i]!;
      expect(Object.keys(top)).toHaveLength(2);
      expect(top[token]).toBe(lp.token_logprobs[i]);
      expect(Math.max(...Object.values(top))).toBe(lp.token_logprobs[i]);
      expect(lp.token_logprobs[i]).toBeLessThan(0);
    });

    const chunks = await streamChunks({ max_tokens: 4, logprobs: 2, echo: true });
    const streamed = chunks.slice(0, 4).map((c) => c.choices[0]!.logprobs!);
    for (const s of streamed) expect(s.tokens).toHaveLength(1);
    expect(streamed.map((s) => s.token_logprobs[0])).toEqual(lp.token_logprobs);
    // Offsets count the echoed prompt.
    expect(streamed.map((s) => s.text_offset[0])).toEqual(lp.text_offset.map((o) => o + prompt.length));
    expect(chunks.at(-1)!.choices[0]!.logprobs).toBeNull();

    const zero = await client.completions.create({
      model: DEFAULT_MODEL,
      prompt,
      max_tokens: 2,
      logprobs: 0,
    });
    const z = zero.choices[0]!.logprobs as unknown as LegacyLogprobs;
    expect(z.top_logprobs.map((t) => Object.keys(t))).toEqual(z.tokens.map((t) => [t]));
  });

  it('400s a batch of prompts, n > 1, logprobs > 5 and a missing prompt; 404s an unknown model', async () => {
    await expect(
      client.completions.create({ model: DEFAULT_MODEL, prompt: ['a', 'b'] }),
    ).rejects.toBeInstanceOf(BadRequestError);
    for (const body of [
      { model: DEFAULT_MODEL, prompt, n: 2 },
      { model: DEFAULT_MODEL, prompt, logprobs: 6 },
      { model: DEFAULT_MODEL },
      { model: DEFAULT_MODEL, prompt, max_tokens: 9000 },
    ]) {
      const res = await post(url, body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'BadRequestError', code: 400 } });
    }
    expect((await post(url, { model: 'nope', prompt })).status).toBe(404);
  });

  it('injects faults like chat', async () => {
    const res = await post(url, { model: DEFAULT_MODEL, prompt }, { 'X-Sim-Error': 'rate_limit' });
    expect(res.status).toBe(429);
    const dropped = await readSse(
      await post(
        url,
        { model: DEFAULT_MODEL, prompt, max_tokens: 50, stream: true },
        { 'X-Sim-Error': 'drop' },
      ),
    );
    expect(dropped.error).toBeDefined();
    expect(dropped.events.some((e) => e.data === '[DONE]')).toBe(false);
  });
});
