import OpenAI, { NotFoundError, toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../stack/common.ts';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * The Batch API end to end with the official openai SDK (v6) at its default settings, on a real
 * stack (simulator, worker, api): files.create → batches.create → batches.retrieve until done →
 * files.content, as a user's code does it (issue 25 §2, "Done when").
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const chatLine = (tag: string, i: number, maxTokens = 6) =>
  JSON.stringify({
    custom_id: `${tag}-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'sim-llama-3-8b',
      messages: [{ role: 'user', content: `${tag} request ${i}` }],
      max_tokens: maxTokens,
    },
  });

/** A line of a batch's output or error file, as OpenAI writes them. */
interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

let stack: Stack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startStack({
    sim: { ttftMs: 2, itlMs: 2, maxNumSeqs: 16 },
    workers: [{ WORKER_CONCURRENCY: '8', BATCH_MAX_SLOTS_FRACTION: '0.5' }],
  });
  client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey });
});
afterAll(() => stack?.close());

const upload = async (lines: string[]) =>
  client.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'in.jsonl'), purpose: 'batch' });

async function untilFinal(id: string, timeoutMs = 60_000): Promise<Batch> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (FINAL.has(b.status) || Date.now() > until) return b;
    await sleep(200);
  }
}

const jsonl = async (fileId: string | null | undefined) => {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as OutputLine);
};

/** One sample of the api's /metrics, by its name and labels as Prometheus prints them. */
const metric = async (series: string) => {
  const text = await (await fetch(`${stack.apiUrl}/metrics`)).text();
  const row = text.split('\n').find((l) => l.startsWith(`${series} `));
  return row === undefined ? undefined : Number(row.slice(series.length + 1));
};

const seenAtSim = (tag: string) =>
  stack
    .sim!.requests()
    .map((r) => JSON.stringify(r.body))
    .map((b) => /"(\w+ request \d+)"/.exec(b)?.[1])
    .filter((c): c is string => c?.startsWith(`${tag} `) === true);

describe('openai SDK: the Batch API', () => {
  it('200 chat requests: completed, 200 output lines whose custom_ids match and whose bodies are ChatCompletions', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => chatLine('all', i));
    const file = await upload(lines);
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { job: 'nightly-eval' },
    });
    expect(created).toMatchObject({
      id: expect.stringMatching(/^batch_/),
      object: 'batch',
      endpoint: '/v1/chat/completions',
      input_file_id: file.id,
      completion_window: '24h',
      status: 'in_progress',
      request_counts: { total: 200 },
      metadata: { job: 'nightly-eval' },
      errors: null,
    });
    expect(created.expires_at).toBe(created.created_at + 86_400);
    // The api's metrics see it: waiting requests on the model's batch queue, and the batch counted.
    const depthNow = await metric('llm_batch_queue_depth{model="sim-llama-3-8b"}');
    expect(depthNow).toBeGreaterThan(0);
    expect(await metric('llm_batches_total{status="in_progress"}')).toBeGreaterThanOrEqual(1);

    const done = await untilFinal(created.id);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 200, completed: 200, failed: 0 });
    expect(done.error_file_id).toBeNull();
    expect(done.completed_at).toBeGreaterThanOrEqual(done.in_progress_at!);
    expect(done.finalizing_at).not.toBeNull();

    expect(await metric('llm_batch_queue_depth{model="sim-llama-3-8b"}')).toBe(0);
    expect(await metric('llm_batches_total{status="completed"}')).toBeGreaterThanOrEqual(1);
    const outFile = await client.files.retrieve(done.output_file_id!);
    expect(outFile.purpose).toBe('batch_output');
    const out = await jsonl(done.output_file_id);
    expect(out).toHaveLength(200);
    expect(out.map((l) => l.custom_id).sort()).toEqual(lines.map((_, i) => `all-${i}`).sort());
    for (const l of out) {
      expect(l).toMatchObject({ id: expect.stringMatching(/^batch_req_/), error: null });
      expect(l.response?.status_code).toBe(200);
      expect(typeof l.response?.request_id).toBe('string');
      const body = l.response?.body as ChatCompletion;
      expect(body).toMatchObject({
        id: expect.stringMatching(/^chatcmpl-/),
        object: 'chat.completion',
        model: 'sim-llama-3-8b',
        created: expect.any(Number),
        choices: [{ index: 0, finish_reason: 'length', message: { role: 'assistant' } }],
        usage: { completion_tokens: 6 },
      });
      expect(body.choices[0]!.message.content!.length).toBeGreaterThan(0);
    }
    // Each in the list, newest first.
    const page = await client.batches.list({ limit: 5 });
    expect(page.data.map((b) => b.id)).toContain(created.id);
  });

  it('a bad line: the batch is failed with errors.data naming the line; nothing runs', async () => {
    const lines = [chatLine('bad', 0), '{"custom_id":"bad-1","method":"GET"', chatLine('bad', 0)];
    const file = await upload(lines);
    const b = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(b.status).toBe('failed');
    expect(b.failed_at).not.toBeNull();
    expect(b.errors?.data).toEqual([
      expect.objectContaining({ code: 'invalid_json_line', line: 2 }),
      expect.objectContaining({ code: 'duplicate_custom_id', line: 3, param: 'custom_id' }),
    ]);
    await sleep(300);
    expect(seenAtSim('bad')).toHaveLength(0);
  });

  it('a bad request body is a 400; another user’s batch is a 404', async () => {
    const file = await upload([chatLine('x', 0)]);
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '1h' as '24h',
      }),
    ).rejects.toMatchObject({ status: 400, error: { param: 'completion_window' } });
    const b = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const other = await createApiKey(stack.redis, stack.keys, 'someone-else');
    const theirs = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: other.key });
    await expect(theirs.batches.retrieve(b.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(theirs.batches.cancel(b.id)).rejects.toBeInstanceOf(NotFoundError);
    // …nor may they start a batch from this user's file.
    await expect(
      theirs.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect((await theirs.batches.list()).data).toEqual([]);
    await untilFinal(b.id);
  });
});

describe('cancel mid-batch', () => {
  let slow: Stack;
  beforeAll(async () => {
    // Two batch slots, 40 ms a request: 60 requests take over a second.
    slow = await startStack({
      sim: { ttftMs: 5, itlMs: 5, maxNumSeqs: 4 },
      workers: [{ WORKER_CONCURRENCY: '4', BATCH_MAX_SLOTS_FRACTION: '0.5' }],
    });
  });
  afterAll(() => slow?.close());

  it('no request starts after the cancel, none runs twice, the output holds what completed', async () => {
    const c = new OpenAI({ baseURL: `${slow.apiUrl}/v1`, apiKey: slow.apiKey });
    const lines = Array.from({ length: 60 }, (_, i) => chatLine('cx', i, 8));
    const file = await c.files.create({
      file: await toFile(Buffer.from(lines.join('\n')), 'c.jsonl'),
      purpose: 'batch',
    });
    const b = await c.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    for (let i = 0; i < 200; i++) {
      if ((await c.batches.retrieve(b.id)).request_counts!.completed >= 10) break;
      await sleep(20);
    }
    const cancelling = await c.batches.cancel(b.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).not.toBeNull();
    const atCancel = slow.sim!.requests().length;

    let done: Batch = cancelling;
    for (let i = 0; i < 100 && done.status !== 'cancelled'; i++) {
      await sleep(100);
      done = await c.batches.retrieve(b.id);
    }
    expect(done.status).toBe('cancelled');
    expect(done.cancelled_at).not.toBeNull();
    const { completed, failed } = done.request_counts!;
    expect(completed).toBeGreaterThanOrEqual(10);
    expect(completed).toBeLessThan(60);
    // At most the requests running at the cancel (two batch slots) start after it.
    expect(slow.sim!.requests().length - atCancel).toBeLessThanOrEqual(2);

    const seen = slow
      .sim!.requests()
      .map((r) => /"(cx request \d+)"/.exec(JSON.stringify(r.body))?.[1])
      .filter((s) => s !== undefined);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(completed + failed);

    const out = await (async () => {
      const text = done.output_file_id ? await (await c.files.content(done.output_file_id)).text() : '';
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as OutputLine);
    })();
    expect(out).toHaveLength(completed);
    for (const l of out) expect(l.response?.status_code).toBe(200);
    const err = done.error_file_id
      ? (await (await c.files.content(done.error_file_id)).text())
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as OutputLine)
      : [];
    expect(err).toHaveLength(60 - completed - failed + failed);
    for (const e of err.filter((e: OutputLine) => e.response === null))
      expect(e.error?.code).toBe('batch_cancelled');
    expect([...out, ...err].map((l: OutputLine) => l.custom_id).sort()).toEqual(
      lines.map((_, i) => `cx-${i}`).sort(),
    );
  });
});

describe('durable: the api replica that created the batch stops mid-batch', () => {
  let two: Stack;
  beforeAll(async () => {
    two = await startStack({
      sim: { ttftMs: 5, itlMs: 5, maxNumSeqs: 4 },
      workers: [{ WORKER_CONCURRENCY: '4', BATCH_MAX_SLOTS_FRACTION: '0.5' }],
    });
  });
  afterAll(() => two?.close());

  it('another replica finalizes it: completed, every request once at the backend, all in the output', async () => {
    const a = new OpenAI({ baseURL: `${two.apiUrl}/v1`, apiKey: two.apiKey });
    const lines = Array.from({ length: 40 }, (_, i) => chatLine('dur', i, 8));
    const file = await a.files.create({
      file: await toFile(Buffer.from(lines.join('\n')), 'd.jsonl'),
      purpose: 'batch',
    });
    const b = await a.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    for (let i = 0; i < 200 && (await a.batches.retrieve(b.id)).request_counts!.completed < 5; i++)
      await sleep(20);
    // Still running when its replica goes: the other one has to finish the job.
    expect((await a.batches.retrieve(b.id)).status).toBe('in_progress');
    await two.api.close();
    const other = await two.startApi();
    const c = new OpenAI({ baseURL: `${other.url}/v1`, apiKey: two.apiKey });
    let done = await c.batches.retrieve(b.id);
    for (let i = 0; i < 150 && done.status !== 'completed'; i++) {
      await sleep(100);
      done = await c.batches.retrieve(b.id);
    }
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
    const out = (await (await c.files.content(done.output_file_id!)).text()).split('\n').filter(Boolean);
    expect(out.map((l) => (JSON.parse(l) as OutputLine).custom_id).sort()).toEqual(
      lines.map((_, i) => `dur-${i}`).sort(),
    );
    const seen = two
      .sim!.requests()
      .map((r) => /"(dur request \d+)"/.exec(JSON.stringify(r.body))?.[1])
      .filter((s) => s !== undefined);
    expect(seen).toHaveLength(40);
    expect(new Set(seen).size).toBe(40);
  });
});
