import { DEFAULT_MODEL } from '@llmgw/config';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, contentOf, post, readSse } from './test-helpers.ts';

const messages = [{ role: 'user', content: 'Tell me about the simulator.' }];

describe('POST /v1/chat/completions', () => {
  let sim: Simulator;
  let url: string;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 2, models: [DEFAULT_MODEL, 'alias'] });
    url = `${sim.url}/v1/chat/completions`;
  });
  afterAll(() => sim.close());

  const complete = async (body: Record<string, unknown>) => {
    const res = await post(url, { model: DEFAULT_MODEL, messages, ...body });
    expect(res.status).toBe(200);
    return (await res.json()) as {
      object: string;
      model: string;
      choices: { message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
  };

  it('streams vLLM chunks: role first, one chunk per token, finish_reason, usage, [DONE]', async () => {
    const res = await post(
      url,
      {
        model: DEFAULT_MODEL,
        messages,
        max_tokens: 7,
        stream: true,
        stream_options: { include_usage: true },
      },
      { 'x-request-id': 'req-123' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toBe('req-123');
    const read = await readSse(res);
    expect(read.error).toBeUndefined();
    expect(read.events.at(-1)?.data).toBe('[DONE]');
    const chunks = chunksOf(read);
    for (const c of chunks) {
      expect(c.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.model).toBe(DEFAULT_MODEL);
      expect(typeof c.created).toBe('number');
    }
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0]).toEqual({
      index: 0,
      delta: { role: 'assistant', content: '' },
      logprobs: null,
      finish_reason: null,
    });
    const tokens = chunks.slice(1, -2);
    expect(tokens).toHaveLength(7);
    for (const c of tokens) {
      expect(c.choices[0]!.finish_reason).toBeNull();
      expect(c.choices[0]!.delta.content).toMatch(/^ ?[a-z]+$/);
      expect(c.usage).toBeNull();
    }
    expect(tokens[0]!.choices[0]!.delta.content).not.toMatch(/^ /);
    expect(tokens[1]!.choices[0]!.delta.content).toMatch(/^ /);
    const last = chunks.at(-2)!;
    expect(last.choices[0]!.finish_reason).toBe('length');
    expect(last.choices[0]!.delta).toEqual({ content: '' });
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toMatchObject({ completion_tokens: 7 });
    expect(usage.usage!.total_tokens).toBe(usage.usage!.prompt_tokens + 7);
  });

  it('continuous_usage_stats: every chunk carries the usage so far, as vLLM sends it', async () => {
    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    const chunks = chunksOf(await readSse(res));
    const prompt = chunks[0]!.usage!.prompt_tokens;
    expect(prompt).toBeGreaterThan(0);
    // The role chunk, one per token, the finish chunk, the usage chunk.
    expect(chunks.map((c) => c.usage?.completion_tokens)).toEqual([0, 1, 2, 3, 4, 4, 4]);
    for (const c of chunks) expect(c.usage).toEqual({ ...c.usage, prompt_tokens: prompt });
    // Not asked with include_usage: no usage at all (vLLM needs both).
    const without = chunksOf(
      await readSse(
        await post(url, {
          model: DEFAULT_MODEL,
          messages,
          max_tokens: 2,
          stream: true,
          stream_options: { continuous_usage_stats: true },
        }),
      ),
    );
    for (const c of without) expect(c).not.toHaveProperty('usage');
  });

  it('omits usage without include_usage', async () => {
    const res = await post(url, { model: DEFAULT_MODEL, messages, max_tokens: 3, stream: true });
    const chunks = chunksOf(await readSse(res));
    expect(chunks).toHaveLength(5);
    for (const c of chunks) expect(c).not.toHaveProperty('usage');
  });

  it('ends with finish_reason stop at the natural length, and honours ignore_eos', async () => {
    const fixed = await startSimulator({ port: 0, ttftMs: 1, itlMs: 1, outputTokens: 4 });
    try {
      const u = `${fixed.url}/v1/chat/completions`;
      const natural = chunksOf(
        await readSse(await post(u, { model: DEFAULT_MODEL, messages, stream: true })),
      );
      expect(natural.slice(1, -1)).toHaveLength(4);
      expect(natural.at(-1)!.choices[0]!.finish_reason).toBe('stop');

      const body = { model: DEFAULT_MODEL, messages, max_tokens: 9, ignore_eos: true };
      const res = await post(u, body);
      const json = (await res.json()) as {
        choices: { finish_reason: string }[];
        usage: { completion_tokens: number };
      };
      expect(json.usage.completion_tokens).toBe(9);
      expect(json.choices[0]!.finish_reason).toBe('length');
    } finally {
      await fixed.close();
    }
  });

  it('is deterministic for the same prompt and seed', async () => {
    const a = await complete({ seed: 42, max_tokens: 20 });
    const b = await complete({ seed: 42, max_tokens: 20 });
    const c = await complete({ seed: 43, max_tokens: 20 });
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
    expect(a.choices[0]!.message.content).not.toBe(c.choices[0]!.message.content);
    const streamed = chunksOf(
      await readSse(
        await post(url, { model: DEFAULT_MODEL, messages, seed: 42, max_tokens: 20, stream: true }),
      ),
    );
    expect(contentOf(streamed)).toBe(a.choices[0]!.message.content);
  });

  it('stops before a stop string, like vLLM (not included, finish_reason stop)', async () => {
    const full = (await complete({ seed: 7, max_tokens: 30 })).choices[0]!.message.content;
    const words = full.split(' ');
    const stop = ` ${words[6]}`;
    const expected = full.slice(0, full.indexOf(stop));

    const json = await complete({ seed: 7, max_tokens: 30, stop });
    expect(json.choices[0]!.message.content).toBe(expected);
    expect(json.choices[0]!.finish_reason).toBe('stop');

    const res = await post(url, {
      model: DEFAULT_MODEL,
      messages,
      seed: 7,
      max_tokens: 30,
      stop: [stop],
      stream: true,
    });
    const chunks = chunksOf(await readSse(res));
    expect(contentOf(chunks)).toBe(expected);
    expect(chunks.at(-1)!.choices[0]).toMatchObject({ finish_reason: 'stop', stop_reason: stop });
  });

  it('answers non-streaming requests with a chat.completion', async () => {
    const json = await complete({ max_tokens: 5, temperature: 0.2, top_p: 0.9 });
    expect(json.object).toBe('chat.completion');
    expect(json.choices[0]!.message.role).toBe('assistant');
    expect(json.choices[0]!.message.content.split(' ')).toHaveLength(5);
    expect(json.choices[0]!.finish_reason).toBe('length');
    expect(json.usage.completion_tokens).toBe(5);
    expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + 5);
  });

  it('serves every configured model name', async () => {
    const json = await complete({ model: 'alias', max_tokens: 2 });
    expect(json.model).toBe('alias');
  });

  it('404s an unknown model in vLLM error shape', async () => {
    const res = await post(url, { model: 'nope', messages });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        message: 'The model `nope` does not exist.',
        type: 'NotFoundError',
        param: 'model',
        code: 404,
      },
    });
  });

  it('400s malformed JSON, a bad body, n > 1 and a prompt beyond max-model-len', async () => {
    const bad = await fetch(url, { method: 'POST', body: '{"model": ' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { type: 'BadRequestError', code: 400 } });

    for (const body of [
      { model: DEFAULT_MODEL },
      { model: DEFAULT_MODEL, messages, max_tokens: 0 },
      { model: DEFAULT_MODEL, messages, n: 2 },
      { model: DEFAULT_MODEL, messages, max_tokens: 9000 },
    ]) {
      const res = await post(url, body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as { error: { type: string; message: string } };
      expect(json.error.type).toBe('BadRequestError');
    }
  });

  it('is parsed by the openai SDK, streaming with include_usage and not', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let completionTokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    expect(text.split(' ')).toHaveLength(6);
    expect(finish).toBe('length');
    expect(completionTokens).toBe(6);

    const completion = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }],
      max_completion_tokens: 6,
    });
    expect(completion.choices[0]!.message.content).toBe(text);
    expect(completion.usage?.completion_tokens).toBe(6);
  });
});
