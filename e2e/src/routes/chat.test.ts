import { DEFAULT_MODEL } from '@llmgw/config';
import { freePort } from '@llmgw/devkit';
import { startSimulator } from '@llmgw/sim';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { directTokens, seedTokens } from '../support/direct.ts';

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content }],
  max_tokens: 24,
  ...extra,
});

async function queueCounts(stack: Stack, model = DEFAULT_MODEL) {
  const q = new Queue(stack.keys.queueName(model), {
    connection: stack.redis,
    prefix: stack.keys.bullPrefix,
  });
  try {
    return await q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
  } finally {
    await q.close();
  }
}

describe('POST /chat through the queue', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Room for 50 concurrent streams: admission control has its own tests.
    stack = await startStack({ sim: { ttftMs: 5, itlMs: 2 }, api: { QUEUE_MAX_WAITING: '100' } });
  });
  afterAll(() => stack?.close());

  it('streams exactly the tokens the backend generated, in order, then [DONE]', async () => {
    const body = ask('tell me about queues');
    const expected = await directTokens(stack.sim!.url, DEFAULT_MODEL, body);
    const res = await stack.chat(body, { headers: { 'x-user-id': 'u1' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-accel-buffering']).toBe('no');
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(expected.length).toBe(24);
    expect(seedTokens(res.data)).toEqual(expected);
  });

  it('keeps 50 concurrent streams apart: each gets its own tokens, none lost or duplicated', async () => {
    const bodies = Array.from({ length: 50 }, (_, i) =>
      ask(`question number ${i}`, { max_tokens: 16 + (i % 5) }),
    );
    const expected = await Promise.all(bodies.map((b) => directTokens(stack.sim!.url, DEFAULT_MODEL, b)));
    const results = await Promise.all(bodies.map((b) => stack.chat(b)));
    results.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(seedTokens(res.data)).toEqual(expected[i]);
    });
  });

  it('answers stream:false with the whole text and usage', async () => {
    const body = ask('non streaming please', { stream: false, max_tokens: 12 });
    const expected = await directTokens(stack.sim!.url, DEFAULT_MODEL, body);
    const res = await stack.fetch(`/chat`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    const json = (await res.json()) as {
      content: string;
      usage: Record<string, number>;
      finish_reason: string;
    };
    expect(json.content).toBe(expected.join(''));
    expect(json.usage.completion_tokens).toBe(12);
    expect(json.usage.prompt_tokens).toBeGreaterThan(0);
    expect(json.usage.total_tokens).toBe((json.usage.prompt_tokens ?? 0) + 12);
    expect(json.finish_reason).toBe('length');
  });

  it('reads a JSON body sent without a JSON content type (curl -d)', async () => {
    const res = await stack.chat(null, {
      rawBody: JSON.stringify(ask('curl style', { max_tokens: 4 })),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(seedTokens(res.data)).toHaveLength(4);
  });

  describe('bad input gets one clear 4xx and enqueues nothing', () => {
    const cases: [string, string, number, string, string | undefined][] = [
      ['malformed JSON', '{"messages": [', 400, 'invalid_json', undefined],
      ['empty body', '', 400, 'invalid_json', undefined],
      ['missing messages', '{"max_tokens": 5}', 400, 'invalid_request', 'messages'],
      ['empty messages', '{"messages": []}', 400, 'invalid_request', 'messages'],
      [
        'unknown role',
        '{"messages":[{"role":"wizard","content":"hi"}]}',
        400,
        'invalid_request',
        'messages.0.role',
      ],
      [
        'max_tokens 0',
        '{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}',
        400,
        'invalid_request',
        'max_tokens',
      ],
      [
        'max_tokens 4097',
        '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4097}',
        400,
        'invalid_request',
        'max_tokens',
      ],
      [
        'max_tokens "abc"',
        '{"messages":[{"role":"user","content":"hi"}],"max_tokens":"abc"}',
        400,
        'invalid_request',
        'max_tokens',
      ],
      ['not an object', '[1,2,3]', 400, 'invalid_request', undefined],
      [
        'only empty content',
        '{"messages":[{"role":"user","content":" "}]}',
        400,
        'invalid_request',
        'messages',
      ],
    ];
    it.each(cases)('%s', async (_name, raw, status, code, param) => {
      const res = await stack.fetch(`/chat`, {
        method: 'POST',
        body: raw,
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(status);
      const json = (await res.json()) as Record<string, unknown>;
      expect(json.error).toBe(code);
      expect(typeof json.message).toBe('string');
      expect(json.request_id).toBe(res.headers.get('x-request-id'));
      if (param) {
        expect(json.param).toBe(param);
        expect(json.message).toContain(param);
      }
    });

    it('body over 1 MiB → 413', async () => {
      const big = JSON.stringify(ask('x'.repeat(1024 * 1024 + 10)));
      const res = await stack.fetch(`/chat`, {
        method: 'POST',
        body: big,
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: string }).error).toBe('payload_too_large');
    });

    it('a chunked body (no Content-Length) is counted as it is read: 413 over 1 MiB, accepted under', async () => {
      const chunked = (text: string) =>
        new ReadableStream<Uint8Array>({
          start(ctl) {
            const bytes = new TextEncoder().encode(text);
            for (let i = 0; i < bytes.length; i += 64 * 1024) ctl.enqueue(bytes.subarray(i, i + 64 * 1024));
            ctl.close();
          },
        });
      const send = (text: string) =>
        stack.fetch(`/chat`, {
          method: 'POST',
          body: chunked(text),
          headers: { 'content-type': 'application/json' },
          duplex: 'half',
        } as RequestInit);
      const big = await send(JSON.stringify(ask('x'.repeat(1024 * 1024 + 10))));
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: string }).error).toBe('payload_too_large');
      const small = await send(JSON.stringify({ ...ask('hello'), stream: false }));
      expect(small.status).toBe(200);
      expect(((await small.json()) as { content: string }).content.length).toBeGreaterThan(0);
    });

    it('left nothing in the queue', async () => {
      const before = await queueCounts(stack);
      for (const [, raw] of cases) {
        await stack.fetch(`/chat`, {
          method: 'POST',
          body: raw,
          headers: { 'content-type': 'application/json' },
        });
      }
      const after = await queueCounts(stack);
      expect(after).toEqual(before);
      expect(
        Object.values(after).reduce((a, b) => a + b, 0) - (after.completed ?? 0) - (after.failed ?? 0),
      ).toBe(0);
      expect(stack.logs.find('request_rejected').length).toBeGreaterThanOrEqual(cases.length);
    });
  });

  it('unknown route → 404 in the same error body', async () => {
    const res = await stack.fetch(`/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe('not_found');
  });
});

describe('backend down', () => {
  let stack: Stack;
  let simPort: number;
  beforeAll(async () => {
    simPort = await freePort();
    stack = await startStack({
      noSim: true,
      api: { QUEUE_TIMEOUT_MS: '1500' },
      workers: [
        {
          LLM_BASE_URL: `http://127.0.0.1:${simPort}/v1`,
          BREAKER_COOLDOWN_MS: '200',
          BREAKER_MAX_COOLDOWN_MS: '500',
        },
      ],
    });
  });
  afterAll(() => stack?.close());

  it('waits QUEUE_TIMEOUT_MS for a backend, then 503 backend_unavailable with Retry-After; serves again once it is back', async () => {
    const started = performance.now();
    const streamed = await stack.chat(ask('anyone there?'));
    expect(streamed.status).toBe(200);
    const frame = JSON.parse(streamed.data.at(-1)!) as { error: { type: string; message: string } };
    expect(frame.error.type).toBe('backend_unavailable');
    // Not a cascade of instant failures: it waited for a backend to come back.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1400);

    const plain = await stack.fetch(`/chat`, {
      method: 'POST',
      body: JSON.stringify(ask('again?', { stream: false })),
    });
    expect(plain.status).toBe(503);
    expect(Number(plain.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await plain.json()) as { error: string }).error).toBe('backend_unavailable');

    const sim = await startSimulator({ port: simPort, ttftMs: 5, itlMs: 1 });
    try {
      const res = await stack.chat(ask('back now?', { max_tokens: 5 }));
      expect(seedTokens(res.data)).toHaveLength(5);
    } finally {
      await sim.close();
    }
  });
});
