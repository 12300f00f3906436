import { DEFAULT_MODEL } from '@llmgw/config';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { directTokens, simTokens } from '../support/direct.ts';

describe('POST /v1/chat/completions with the official openai client', () => {
  let stack: Stack;
  let client: OpenAI;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 5, itlMs: 2 } });
    client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  });
  afterAll(() => stack?.close());

  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Name three queues.' },
  ];

  it('streams chunks with the backend text, finish_reason, the usage chunk and [DONE]', async () => {
    const expected = await directTokens(stack.sim!.url, DEFAULT_MODEL, { messages, max_tokens: 10, seed: 3 });
    const stream = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 10,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    const finish: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let first: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
    for await (const chunk of stream) {
      first ??= chunk;
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.model).toBe(DEFAULT_MODEL);
      expect(chunk.id).toBe(first.id);
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish.push(choice.finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(first?.choices[0]?.delta.role).toBe('assistant');
    expect(simTokens(deltas.join(''))).toEqual(expected);
    expect(finish).toEqual(['length']);
    expect(usage?.completion_tokens).toBe(10);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + 10);
  });

  it('answers non-streaming with a chat.completion and usage', async () => {
    const expected = await directTokens(stack.sim!.url, DEFAULT_MODEL, {
      messages,
      max_completion_tokens: 7,
    });
    const res = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages,
      max_completion_tokens: 7,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]?.message).toMatchObject({ role: 'assistant', content: expected.join('') });
    expect(res.choices[0]?.finish_reason).toBe('length');
    expect(res.usage?.completion_tokens).toBe(7);
  });

  it('passes stop through: the text ends before the stop string, finish_reason stop', async () => {
    const full = (await directTokens(stack.sim!.url, DEFAULT_MODEL, { messages, max_tokens: 12 })).join('');
    const stopWord = full.split(' ')[4]!;
    const res = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages,
      max_tokens: 12,
      stop: [` ${stopWord}`],
    });
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(full.startsWith(res.choices[0]!.message.content!)).toBe(true);
    expect(res.choices[0]?.message.content).not.toContain(` ${stopWord}`);
  });

  it('unknown model raises the SDK NotFoundError with code model_not_found', async () => {
    const err = await client.chat.completions
      .create({ model: 'no-such-model', messages, max_tokens: 5 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('n > 1 is refused with a 400 that says so', async () => {
    const err = await client.chat.completions
      .create({ model: DEFAULT_MODEL, messages, n: 2 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toContain('n > 1 is not supported');
  });

  it('errors on /v1 use OpenAI shape and carry the request id header', async () => {
    const res = await stack.fetch(`/v1/chat/completions`, {
      method: 'POST',
      body: '{"messages":',
      headers: { 'x-request-id': 'req-abc-123' },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', param: null });
    expect(typeof body.error.message).toBe('string');
  });
});
