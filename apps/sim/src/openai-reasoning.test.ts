import { DEFAULT_MODEL } from '@llmgw/config';
import { OpenAI } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimOptions } from './options.ts';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, post, readSse } from './test-helpers.ts';

const REASONER = 'sim-Reasoning-8b';
const messages = [{ role: 'user', content: 'Why is the sky blue?' }];

type Delta = { role?: string; content?: string; reasoning_content?: string; reasoning?: string };

describe('reasoning on /v1/chat/completions', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  const start = async (opts: Partial<SimOptions> = {}) => {
    sim = await startSimulator({ port: 0, ttftMs: 2, itlMs: 1, models: [DEFAULT_MODEL, REASONER], ...opts });
    return `${sim.url}/v1/chat/completions`;
  };

  const stream = async (url: string, body: Record<string, unknown>) => {
    const chunks = chunksOf(await readSse(await post(url, { messages, stream: true, ...body })));
    return chunks.map((c) => ({
      delta: (c.choices[0]?.delta ?? {}) as Delta,
      finish: c.choices[0]?.finish_reason,
    }));
  };

  it('streams reasoning_content tokens before the content, counted in usage', async () => {
    const url = await start({ reasoningTokens: 5 });
    const body = { model: REASONER, max_tokens: 12, stream_options: { include_usage: true } };
    const res = await post(url, { messages, stream: true, ...body });
    const chunks = chunksOf(await readSse(res));
    const deltas = chunks.slice(1, -2).map((c) => c.choices[0]!.delta as Delta);
    expect(deltas).toHaveLength(12);
    const reasoning = deltas.slice(0, 5);
    for (const d of reasoning) expect(Object.keys(d)).toEqual(['reasoning_content']);
    for (const d of deltas.slice(5)) expect(Object.keys(d)).toEqual(['content']);
    expect(reasoning[0]!.reasoning_content).toMatch(/^[a-z]+$/);
    expect(reasoning[1]!.reasoning_content).toMatch(/^ [a-z]+$/);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 12 });
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('length');

    // The answer is the one the same prompt gets from a plain model; the reasoning comes first.
    const plain = await stream(url, { model: DEFAULT_MODEL, max_tokens: 7 });
    const answer = deltas
      .slice(5)
      .map((d) => d.content)
      .join('');
    expect(answer).toBe(plain.map((c) => c.delta.content ?? '').join(''));
  });

  it('returns message.reasoning_content and the content without streaming', async () => {
    const url = await start({ reasoningTokens: 4 });
    const client = new OpenAI({ baseURL: `${sim!.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: REASONER,
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
      max_tokens: 10,
    });
    const message = completion.choices[0]!.message as (typeof completion.choices)[0]['message'] & Delta;
    expect(message.reasoning_content!.split(' ')).toHaveLength(4);
    expect(message).not.toHaveProperty('reasoning');
    expect(message.content!.split(' ')).toHaveLength(6);
    expect(completion.usage?.completion_tokens).toBe(10);

    const streamed = await stream(url, { model: REASONER, max_tokens: 10 });
    expect(streamed.map((c) => c.delta.reasoning_content ?? '').join('')).toBe(message.reasoning_content);
    expect(streamed.map((c) => c.delta.content ?? '').join('')).toBe(message.content);
  });

  it('uses delta.reasoning with --reasoning-field reasoning, and both fields with both', async () => {
    let url = await start({ reasoningTokens: 2, reasoningField: 'reasoning' });
    let chunks = await stream(url, { model: REASONER, max_tokens: 3 });
    expect(chunks[1]!.delta).toEqual({ reasoning: expect.stringMatching(/^[a-z]+$/) });
    const json = (await (await post(url, { model: REASONER, messages, max_tokens: 3 })).json()) as {
      choices: { message: Delta }[];
    };
    expect(json.choices[0]!.message.reasoning?.split(' ')).toHaveLength(2);
    expect(json.choices[0]!.message).not.toHaveProperty('reasoning_content');
    await sim!.close();

    url = await start({ reasoningTokens: 2, reasoningField: 'both' });
    chunks = await stream(url, { model: REASONER, max_tokens: 3 });
    const d = chunks[1]!.delta;
    expect(Object.keys(d)).toEqual(['reasoning_content', 'reasoning']);
    expect(d.reasoning).toBe(d.reasoning_content);
  });

  it('finishes with length and no content when max_tokens ends inside the reasoning', async () => {
    const url = await start({ reasoningTokens: 8 });
    const chunks = await stream(url, { model: REASONER, max_tokens: 3 });
    expect(chunks.filter((c) => c.delta.reasoning_content !== undefined)).toHaveLength(3);
    expect(chunks.slice(1).every((c) => !c.delta.content)).toBe(true);
    expect(chunks.at(-1)!.finish).toBe('length');
    const json = (await (await post(url, { model: REASONER, messages, max_tokens: 3 })).json()) as {
      choices: { message: { content: string | null } }[];
    };
    expect(json.choices[0]!.message.content).toBeNull();
  });

  it('reasons before a tool call; not on plain models, with enable_thinking false, or with 0 tokens', async () => {
    const url = await start({ reasoningTokens: 3 });
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const withTool = await stream(url, { model: REASONER, tools });
    expect(withTool.slice(1, 4).map((c) => Object.keys(c.delta))).toEqual([
      ['reasoning_content'],
      ['reasoning_content'],
      ['reasoning_content'],
    ]);
    expect(withTool[4]!.delta).toHaveProperty('tool_calls');
    expect(withTool.at(-1)!.finish).toBe('tool_calls');

    for (const body of [
      { model: DEFAULT_MODEL },
      { model: REASONER, chat_template_kwargs: { enable_thinking: false } },
    ]) {
      const chunks = await stream(url, { ...body, max_tokens: 4 });
      expect(chunks.some((c) => c.delta.reasoning_content !== undefined)).toBe(false);
    }
    await sim!.close();
    const none = await start({ reasoningTokens: 0 });
    const chunks = await stream(none, { model: REASONER, max_tokens: 4 });
    expect(chunks.some((c) => c.delta.reasoning_content !== undefined)).toBe(false);
  });
});
