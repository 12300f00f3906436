import { type BatchResult, type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import { FileStore, recordBatchResult } from '@llmgw/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchObject } from '../batch/bodies.ts';
import { BatchFinalizer } from '../batch/finalize.ts';
import { buildTestApp, type TestApp } from '../testing/app-deps.ts';

/**
 * `/v1/batches` through the app (`app.request()`), on the real api parts and the test Redis, with
 * no worker: what the api queues, and how it finalizes what workers recorded (written here as a
 * worker writes it, recordBatchResult). The whole path with workers is e2e/src/batch/.
 */

let t: TestApp;
let alice: Awaited<ReturnType<TestApp['keyOf']>>;
let bob: Awaited<ReturnType<TestApp['keyOf']>>;
beforeAll(async () => {
  t = await buildTestApp();
  alice = await t.keyOf();
  bob = await t.keyOf();
});
afterAll(() => t?.close());

const chatLine = (i: number) =>
  JSON.stringify({
    custom_id: `c${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { messages: [{ role: 'user', content: `hi ${i}` }], max_completion_tokens: 7, temperature: 0.5 },
  });
const completionLine = (i: number) =>
  JSON.stringify({
    custom_id: `p${i}`,
    method: 'POST',
    url: '/v1/completions',
    body: { prompt: `once upon ${i}`, max_tokens: 3 },
  });

async function upload(lines: string[], who = alice): Promise<string> {
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', new Blob([lines.join('\n')]), 'in.jsonl');
  const res = await t.app.request('/v1/files', { method: 'POST', headers: who.headers, body: form });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

const post = (path: string, body: unknown, who = alice) =>
  t.app.request(path, {
    method: 'POST',
    headers: { ...who.headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const get = async (path: string, who = alice) => t.app.request(path, { headers: who.headers });

async function create(lines: string[], endpoint = '/v1/chat/completions'): Promise<BatchObject> {
  const res = await post('/v1/batches', {
    input_file_id: await upload(lines),
    endpoint,
    completion_window: '24h',
  });
  expect(res.status).toBe(200);
  return (await res.json()) as BatchObject;
}

const ok = (text: string): BatchResult => ({
  ok: true,
  deltas: [{ k: 'text', t: text }],
  finishReason: 'length',
  usage: { promptTokens: 4, completionTokens: 3 },
});

const skipped: BatchResult = { ok: false, error: 'cancelled', message: 'skipped' };
const timedOut: BatchResult = { ok: false, error: 'backend_timeout', message: 'no first token' };

const content = async (fileId: string | null) => {
  expect(fileId).not.toBeNull();
  const res = await get(`/v1/files/${fileId}/content`);
  return (await res.text())
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { custom_id: string });
};

const untilStatus = async (id: string, status: string) => {
  for (let i = 0; i < 50; i++) {
    const b = (await (await get(`/v1/batches/${id}`)).json()) as BatchObject;
    if (b.status === status) return b;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} never became ${status}`);
};

describe('POST /v1/batches', () => {
  it('queues each line as the job its request would be: the route’s params, the owner, the window as deadline', async () => {
    const b = await create([chatLine(0), '', chatLine(1)]);
    expect(b.status).toBe('in_progress');
    expect(b.request_counts).toEqual({ total: 2, completed: 0, failed: 0 });
    const q = t.deps.dispatcher.batchQueue(t.deps.defaultModel);
    const job = await q.getJob(`${b.id}-1`);
    const data = job!.data as ChatJob;
    expect(data).toMatchObject({
      v: JOB_VERSION,
      kind: 'chat',
      graceMs: -1,
      model: t.deps.defaultModel,
      messages: [{ role: 'user', content: 'hi 1' }],
      params: { max_tokens: 7, temperature: 0.5 },
      userId: alice.userId,
      batch: { id: b.id, index: 1, customId: 'c1' },
    });
    expect(Math.abs(data.deadline! - b.expires_at! * 1000)).toBeLessThan(1000);
    expect(data.log).toBeUndefined();
  });

  it('a line for the other endpoint fails the batch, and nothing is queued', async () => {
    const b = await create([chatLine(0), completionLine(1)]);
    expect(b.status).toBe('failed');
    expect(b.errors?.data).toEqual([expect.objectContaining({ code: 'url_mismatch', line: 2 })]);
    expect(await t.deps.dispatcher.batchQueue(t.deps.defaultModel).getJob(`${b.id}-0`)).toBeUndefined();
  });

  it('a line naming a model no worker serves fails the batch (it would wait out its window)', async () => {
    const line = JSON.stringify({
      custom_id: 'x',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] },
    });
    const b = await create([chatLine(0), line]);
    expect(b.status).toBe('failed');
    expect(b.errors?.data).toEqual([
      expect.objectContaining({ code: 'model_not_found', param: 'body.model', line: null }),
    ]);
  });

  it('only its owner sees it: 404 to anyone else, and not in their list', async () => {
    const b = await create([chatLine(0)]);
    expect((await get(`/v1/batches/${b.id}`, bob)).status).toBe(404);
    expect((await post(`/v1/batches/${b.id}/cancel`, {}, bob)).status).toBe(404);
    const theirs = (await (await get('/v1/batches', bob)).json()) as { data: unknown[] };
    expect(theirs.data).toEqual([]);
    const mine = (await (await get('/v1/batches?limit=1', alice)).json()) as {
      data: { id: string }[];
      has_more: boolean;
      last_id: string;
    };
    expect(mine.data.map((x) => x.id)).toEqual([b.id]);
    expect(mine.has_more).toBe(true);
    const next = (await (await get(`/v1/batches?limit=100&after=${mine.last_id}`)).json()) as {
      data: { id: string }[];
    };
    expect(next.data.map((x) => x.id)).not.toContain(b.id);
    expect(next.data.length).toBeGreaterThan(0);
  });
});

describe('finalizing', () => {
  it('a completions batch: its output bodies are text_completions of the recorded text', async () => {
    const b = await create([completionLine(0), completionLine(1)], '/v1/completions');
    await recordBatchResult(t.redis, t.keys, b.id, 0, ok(' there was'));
    await recordBatchResult(t.redis, t.keys, b.id, 1, timedOut, 'failed');
    const done = await untilStatus(b.id, 'completed');
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    const [out] = await content(done.output_file_id);
    expect(out).toMatchObject({
      custom_id: 'p0',
      response: {
        status_code: 200,
        body: {
          object: 'text_completion',
          choices: [{ text: ' there was', finish_reason: 'length' }],
          usage: { prompt_tokens: 4, completion_tokens: 3 },
        },
      },
      error: null,
    });
    const [err] = await content(done.error_file_id);
    expect(err).toMatchObject({
      custom_id: 'p1',
      response: { status_code: 504, body: { error: { code: 'backend_timeout' } } },
      error: { code: 'backend_timeout', message: 'no first token' },
    });
  });

  it('cancel: cancelling at once, cancelled once every request has ended, the skipped ones in the error file', async () => {
    const b = await create([chatLine(0), chatLine(1), chatLine(2)]);
    await recordBatchResult(t.redis, t.keys, b.id, 0, ok('done'));
    const res = await post(`/v1/batches/${b.id}/cancel`, {});
    expect(((await res.json()) as BatchObject).status).toBe('cancelling');
    // Workers skip the other two (their batch is not in_progress).
    expect(await t.redis.hget(t.keys.batch(b.id), 'status')).toBe('cancelling');
    for (const i of [1, 2]) {
      await recordBatchResult(t.redis, t.keys, b.id, i, skipped, 'cancelled');
    }
    const done = await untilStatus(b.id, 'cancelled');
    expect(done.cancelled_at).not.toBeNull();
    expect((await content(done.output_file_id)).map((l) => l.custom_id)).toEqual(['c0']);
    expect(await content(done.error_file_id)).toEqual([
      expect.objectContaining({
        custom_id: 'c1',
        response: null,
        error: expect.objectContaining({ code: 'batch_cancelled' }),
      }),
      expect.objectContaining({
        custom_id: 'c2',
        response: null,
        error: expect.objectContaining({ code: 'batch_cancelled' }),
      }),
    ]);
    expect((await post(`/v1/batches/${b.id}/cancel`, {})).status).toBe(200);
  });

  it('cancel with no worker to skip them: the api takes the waiting requests off the queue, and the batch is cancelled', async () => {
    const b = await create([chatLine(0), chatLine(1), chatLine(2), chatLine(3)]);
    const q = t.deps.dispatcher.batchQueue(t.deps.defaultModel);
    expect(await q.getJob(`${b.id}-3`)).toBeDefined();
    await post(`/v1/batches/${b.id}/cancel`, {});
    const done = await untilStatus(b.id, 'cancelled');
    expect(done.output_file_id).toBeNull();
    const errs = await content(done.error_file_id);
    expect(errs.map((l) => [l.custom_id, (l.error as { code: string }).code])).toEqual([
      ['c0', 'batch_cancelled'],
      ['c1', 'batch_cancelled'],
      ['c2', 'batch_cancelled'],
      ['c3', 'batch_cancelled'],
    ]);
    for (const i of [0, 1, 2, 3]) expect(await q.getJob(`${b.id}-${i}`)).toBeUndefined();
  });

  it('expired: past its window, what never ran goes to the error file as batch_expired, and workers skip the rest', async () => {
    const b = await create([chatLine(0), chatLine(1), chatLine(2)]);
    await recordBatchResult(t.redis, t.keys, b.id, 1, ok('in time'));
    const finalizer = new BatchFinalizer({
      redis: t.redis,
      keys: t.keys,
      log: t.deps.log,
      store: new FileStore({ redis: t.redis, keys: t.keys, maxTtlMs: 86_400_000 }),
      fileTtlMs: 86_400_000,
      batchQueue: (m) => t.deps.dispatcher.batchQueue(m),
      now: () => Date.now() + 25 * 3600_000,
    });
    expect(await finalizer.finalizeIfDue(b.id)).toBe(true);
    const done = (await (await get(`/v1/batches/${b.id}`)).json()) as BatchObject;
    expect(done.status).toBe('expired');
    expect(done.expired_at).not.toBeNull();
    expect(done.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    expect((await content(done.output_file_id)).map((l) => l.custom_id)).toEqual(['c1']);
    const errs = await content(done.error_file_id);
    expect(errs.map((l) => [l.custom_id, (l.error as { code: string }).code])).toEqual([
      ['c0', 'batch_expired'],
      ['c2', 'batch_expired'],
    ]);
    expect(await t.redis.zscore(t.keys.openBatches, b.id)).toBeNull();
    // Taken off the queue: no worker meets them later.
    const q = t.deps.dispatcher.batchQueue(t.deps.defaultModel);
    for (const i of [0, 2]) expect(await q.getJob(`${b.id}-${i}`)).toBeUndefined();
  });

  it('a batch left validating by a replica that died while checking its file: failed after 15 minutes, not forever', async () => {
    const b = await create([chatLine(0)]);
    // As the dead replica left it: validating, open, nothing queued.
    await t.redis.hset(t.keys.batch(b.id), 'status', 'validating');
    const at = (ms: number) =>
      new BatchFinalizer({
        redis: t.redis,
        keys: t.keys,
        log: t.deps.log,
        store: new FileStore({ redis: t.redis, keys: t.keys, maxTtlMs: 86_400_000 }),
        fileTtlMs: 86_400_000,
        now: () => Date.now() + ms,
      });
    expect(await at(60_000).finalizeIfDue(b.id)).toBe(false);
    expect(await at(16 * 60_000).finalizeIfDue(b.id)).toBe(true);
    const done = (await (await get(`/v1/batches/${b.id}`)).json()) as BatchObject;
    expect(done.status).toBe('failed');
    expect(done.errors?.data).toEqual([expect.objectContaining({ code: 'internal_error' })]);
  });
});
