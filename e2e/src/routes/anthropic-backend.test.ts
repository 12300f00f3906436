import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

/** The worker driving Anthropic's Messages API (the simulator speaks it), behind both endpoints. */
describe('LLM_PROVIDER=anthropic', () => {
  let stack: Stack;
  let client: OpenAI;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 5, itlMs: 2 }, workers: [] });
    await stack.startWorker({ LLM_PROVIDER: 'anthropic', LLM_BASE_URL: stack.sim!.url });
    client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  });
  afterAll(() => stack?.close());

  const messages = [
    { role: 'system' as const, content: 'Answer briefly.' },
    { role: 'user' as const, content: 'What is a queue?' },
  ];

  it('/chat streams and answers', async () => {
    const res = await stack.chat({ messages, max_tokens: 9 });
    const tokens = seedTokens(res.data);
    expect(tokens).toHaveLength(9);
    const plain = await stack.fetch(`/chat`, {
      method: 'POST',
      body: JSON.stringify({ messages, max_tokens: 9, stream: false }),
    });
    const json = (await plain.json()) as {
      content: string;
      finish_reason: string;
      usage: Record<string, number>;
    };
    expect(json.content).toBe(tokens.join(''));
    expect(json.finish_reason).toBe('length');
    expect(json.usage.completion_tokens).toBe(9);
    expect(json.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('/v1/chat/completions streams with usage, maps stop_sequences and stop reasons', async () => {
    const stream = await client.chat.completions.create({
      model: 'sim-llama-3-8b',
      messages,
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(6);

    const stopWord = text.split(' ')[3]!;
    const stopped = await client.chat.completions.create({
      model: 'sim-llama-3-8b',
      messages,
      max_tokens: 6,
      stop: [` ${stopWord}`],
    });
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
    expect(text.startsWith(stopped.choices[0]!.message.content!)).toBe(true);
    expect(stopped.choices[0]!.message.content).not.toContain(` ${stopWord}`);
  });
});
