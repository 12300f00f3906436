import { randomUUID } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompatStack, REASONING_MODEL, startCompatStack, WEATHER_TOOL } from '../stack/compat.ts';

const tool: Anthropic.Tool = {
  name: WEATHER_TOOL.name,
  description: WEATHER_TOOL.description,
  input_schema: WEATHER_TOOL.parameters as unknown as Anthropic.Tool.InputSchema,
};

const thinking = { type: 'enabled', budget_tokens: 16 } as const;

/**
 * Extended thinking with tool use through `/v1/messages` over an Anthropic backend, as Anthropic's
 * docs ask a client to do it: the answer's thinking block reaches the client with the signature
 * the backend gave it, and the client's next turn (its tool result) reaches the backend with that
 * block first in the assistant turn, unchanged. The simulator refuses the turn otherwise, as
 * Anthropic's API does (400: "a final assistant message must start with a thinking block").
 */
describe('thinking signatures, Anthropic SDK through /v1/messages, Anthropic backend', () => {
  let stack: CompatStack;
  let client: Anthropic;
  beforeAll(async () => {
    stack = await startCompatStack('anthropic');
    client = new Anthropic({ baseURL: stack.apiUrl, apiKey: stack.apiKey, maxRetries: 0 });
  });
  afterAll(() => stack?.close());

  /** A question no other test asks, so that its requests can be found in the backend's log. */
  const ask = (): Anthropic.MessageParam => ({
    role: 'user',
    content: `Weather in Paris? (${randomUUID()})`,
  });

  /** The body of the last request the backend received that contains `marker`. */
  const sentWith = (marker: string) => {
    const found = stack.backendRequests().findLast((r) => JSON.stringify(r.body).includes(marker));
    if (!found) throw new Error(`no backend request contains ${marker}`);
    return found.body as { thinking?: unknown; messages: { role: string; content: unknown }[] };
  };

  /** The assistant turn as the backend answered it, in its own format (the simulator's answer). */
  const backendAnswer = async (question: Anthropic.MessageParam) => {
    const res = await fetch(`${stack.sim!.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: REASONING_MODEL,
        max_tokens: 200,
        thinking,
        tools: [tool],
        messages: [question],
      }),
    });
    return ((await res.json()) as Anthropic.Message).content;
  };

  const toolResult = (use: Anthropic.ToolUseBlock): Anthropic.MessageParam => ({
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 °C' }],
  });

  it.each([
    ['streamed', true],
    ['not streamed', false],
  ] as const)(
    '%s: the signature reaches the client, and goes back to the backend with the tool result',
    async (_, stream) => {
      const question = ask();
      const body = { model: REASONING_MODEL, max_tokens: 200, thinking, tools: [tool], messages: [question] };
      const deltas: string[] = [];
      let first: Anthropic.Message;
      if (stream) {
        const s = client.messages.stream(body);
        s.on('streamEvent', (e) => {
          if (e.type === 'content_block_delta') deltas.push(e.delta.type);
        });
        first = await s.finalMessage();
        // Anthropic's order: the thoughts, then their signature, then the next block.
        expect(deltas.lastIndexOf('thinking_delta')).toBeLessThan(deltas.indexOf('signature_delta'));
        expect(deltas.filter((d) => d === 'signature_delta')).toHaveLength(1);
      } else first = await client.messages.create(body);

      expect(first.stop_reason).toBe('tool_use');
      expect(first.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
      const [thought, use] = first.content as [Anthropic.ThinkingBlock, Anthropic.ToolUseBlock];
      expect(thought.signature).toMatch(/^[A-Za-z0-9+/]{20,}={0,2}$/);
      // Exactly what the backend signed: the same question asked of it directly.
      expect(await backendAnswer(question)).toMatchObject([
        { type: 'thinking', thinking: thought.thinking, signature: thought.signature },
        { type: 'tool_use', name: use.name },
      ]);

      const second = await client.messages.create({
        ...body,
        max_tokens: 30,
        messages: [question, { role: 'assistant', content: first.content }, toolResult(use)],
      });
      expect(second.content.map((b) => b.type)).toEqual(['thinking', 'text']);
      expect((second.content[0] as Anthropic.ThinkingBlock).signature).toMatch(/.{20}/);

      const sent = sentWith(use.id);
      expect(sent.thinking).toEqual(thinking);
      expect(sent.messages[1]).toEqual({
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: thought.thinking, signature: thought.signature },
          { type: 'tool_use', id: use.id, name: use.name, input: use.input },
        ],
      });
    },
  );

  it("a turn without its thinking is the backend's 400; with thinking off it is answered", async () => {
    const question = ask();
    const body = { model: REASONING_MODEL, max_tokens: 200, thinking, tools: [tool], messages: [question] };
    const first = await client.messages.create(body);
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    const withoutThinking: Anthropic.MessageParam[] = [
      question,
      { role: 'assistant', content: [use] },
      toolResult(use),
    ];

    const err = await client.messages
      .create({ ...body, max_tokens: 30, messages: withoutThinking })
      .then(() => undefined)
      .catch((e: unknown) => e as InstanceType<typeof Anthropic.APIError>);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err?.message).toMatch(/must start with a thinking block/);
    // A thinking block the backend did not sign (an OpenAI-compatible backend's `signature: ""`)
    // is not sent to it: the same refusal, not a forged block.
    const unsigned = await client.messages
      .create({
        ...body,
        max_tokens: 30,
        messages: [
          question,
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'Hm.', signature: '' }, use] },
          toolResult(use),
        ],
      })
      .then(() => undefined)
      .catch((e: unknown) => e as InstanceType<typeof Anthropic.APIError>);
    expect(unsigned?.message).toMatch(/must start with a thinking block/);

    const { thinking: _, ...off } = body;
    for (const params of [off, { ...off, thinking: { type: 'disabled' as const } }]) {
      const answered = await client.messages.create({ ...params, max_tokens: 30, messages: withoutThinking });
      expect(answered.content.at(-1)?.type).toBe('text');
    }
    // With thinking off, signed thinking the client sends back is not forwarded either.
    await client.messages.create({
      ...off,
      max_tokens: 30,
      messages: [question, { role: 'assistant', content: first.content }, toolResult(use)],
    });
    const sent = sentWith(use.id);
    expect(sent.thinking).toBeUndefined();
    expect(sent.messages[1]!.content).toEqual([
      { type: 'tool_use', id: use.id, name: use.name, input: use.input },
    ]);
  });
});
