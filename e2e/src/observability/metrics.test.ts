import { CLIP_CHARS } from '@llmgw/api';
import { parseMetricsText } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const MODEL = 'sim-llama-3-8b';
const messages = [{ role: 'user', content: 'hi' }];

/** One request naming `model` on each chat endpoint, in its own request shape. */
const requests = (model: string): [string, Record<string, unknown>][] => [
  ['/chat', { model, messages, max_tokens: 2 }],
  ['/v1/chat/completions', { model, messages, max_tokens: 2 }],
  ['/v1/completions', { model, prompt: 'hi', max_tokens: 2 }],
  ['/v1/messages', { model, messages, max_tokens: 2 }],
];

describe('metric labels from client input are bounded', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 } });
  });
  afterAll(() => stack?.close());

  const scrape = async () => {
    const res = await fetch(`${stack.apiUrl}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };

  it('60 requests naming distinct 10 KB models add no series for them: only model="unknown"', async () => {
    // A known model first: its series keep its name (the mapping is not "everything is unknown").
    const served = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, messages, max_tokens: 2 }),
    });
    expect(served.status).toBe(200);
    const before = await scrape();

    const names = Array.from({ length: 15 }, (_, i) => `evil-${i}-${'x'.repeat(10_000)}`);
    const sent = names.flatMap((name) => requests(name));
    const statuses = await Promise.all(
      sent.map(async ([path, body]) => {
        const res = await stack.fetch(path, { method: 'POST', body: JSON.stringify(body) });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses).toEqual(Array(sent.length).fill(404));

    const after = await scrape();
    expect(after).not.toContain('evil-');
    // 60 × 10 KB of names would be 600 KB of label values; a few new series (404s by route) only.
    expect(after.length - before.length).toBeLessThan(20_000);
    const families = [...parseMetricsText(after).values()];
    const samples = families.flatMap((f) => f.samples);
    const models = new Set(samples.flatMap((s) => (s.labels.model === undefined ? [] : [s.labels.model])));
    expect([...models].sort()).toEqual(['sim-llama-3-8b', 'unknown']);
    // Summed over the family's other labels (tier, …): every refusal is counted, under `unknown`.
    const refused = samples
      .filter((s) => s.name === 'llm_admission_rejections_total' && s.labels.reason === 'model_not_found')
      .map((s) => {
        expect(s.labels.model).toBe('unknown');
        return s.value;
      });
    expect(refused.reduce((a, b) => a + b, 0)).toBe(sent.length);
    const output = samples.find(
      (s) => s.name === 'llm_tokens_total' && s.labels.model === MODEL && s.labels.type === 'output',
    );
    expect(output?.value).toBe(2);
  });

  it('the 404 names the model cut to 128 characters; the log line too', async () => {
    const name = `long-${'y'.repeat(5000)}`;
    const cut = `${name.slice(0, CLIP_CHARS)}…`;

    const seed = await stack.fetch('/chat', {
      method: 'POST',
      body: JSON.stringify({ model: name, messages, max_tokens: 2 }),
    });
    expect(seed.status).toBe(404);
    const seedBody = (await seed.json()) as { error: string; message: string };
    expect(seedBody).toMatchObject({
      error: 'model_not_found',
      message: `The model '${cut}' does not exist`,
    });

    const openai = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ model: name, messages, max_tokens: 2 }),
    });
    expect(openai.status).toBe(404);
    const openaiBody = (await openai.json()) as { error: { message: string; code: string } };
    expect(openaiBody.error).toMatchObject({
      code: 'model_not_found',
      message: `The model '${cut}' does not exist`,
    });

    const retrieve = await stack.fetch(`/v1/models/${name}`);
    expect(retrieve.status).toBe(404);
    expect(((await retrieve.json()) as { error: { message: string } }).error.message).toBe(
      `The model '${cut}' does not exist`,
    );

    const id = seed.headers.get('x-request-id');
    const line = stack.logs.find('request_completed').find((l) => l.request_id === id);
    expect(line?.model).toBe(cut);
    const rejected = stack.logs.find('request_rejected').find((l) => l.request_id === id);
    expect(String(rejected?.err)).toBe(`The model '${cut}' does not exist`);
  });
});
