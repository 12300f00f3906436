import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * Jobs the api takes off the queue before any worker had them (issue 24 §3, §9): their client
 * left, their owner cancelled them, their deadline passed. Each is counted once in the ledger,
 * with no tokens, under the outcome its status shows, and its status says it used nothing.
 */
const MODEL = 'sim-llama-3-8b';
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    // One slot, held by a long job: every other job waits in the queue.
    sim: { ttftMs: 5, itlMs: 100 },
    api: { QUEUE_TIMEOUT_MS: '1500' },
    workers: [{ WORKER_CONCURRENCY: '1', WORKER_FETCHERS: '1' }],
  });
});
afterAll(() => stack?.close());

interface Status {
  status: string;
  error?: { type: string };
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
const status = async (id: string) => (await (await stack.fetch(`/v1/jobs/${id}`)).json()) as Status;
const user = (content: string) => [{ role: 'user', content }];

describe('jobs that never ran', () => {
  it('are counted once with no tokens, and their status says so: cancelled, cancelled, expired', async () => {
    const holder = stack.chat(
      { model: MODEL, messages: user('hold the slot'), max_tokens: 40, stream: true },
      {},
      '/v1/chat/completions',
    );
    await expect.poll(() => stack.sim!.stats().running).toBe(1);

    // Its client leaves while it waits.
    const left = await stack.chat(
      { model: MODEL, messages: user('I leave'), max_tokens: 5, stream: true },
      { timeoutMs: 300 },
      '/v1/chat/completions',
    );
    expect(left.disconnected).toBe(true);
    const leftId = String(left.headers['x-job-id']);
    // Its owner cancels it while it waits.
    const queued = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, messages: user('cancel me'), max_tokens: 5 }),
    });
    expect(queued.status).toBe(202);
    const cancelledId = ((await queued.json()) as { id: string }).id;
    expect(
      ((await (await stack.fetch(`/v1/jobs/${cancelledId}/cancel`, { method: 'POST' })).json()) as Status)
        .status,
    ).toBe('cancelled');
    // Its deadline passes while it waits.
    const late = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: user('too late'), max_tokens: 5 }),
    });
    expect(late.status).toBe(503);
    const lateId = late.headers.get('x-job-id')!;
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('queue_timeout');

    const zero = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    await expect.poll(() => status(leftId)).toMatchObject({ status: 'cancelled', usage: zero });
    expect(await status(cancelledId)).toMatchObject({ status: 'cancelled', usage: zero });
    expect(await status(lateId)).toMatchObject({
      status: 'failed',
      error: { type: 'queue_timeout' },
      usage: zero,
    });

    await holder;
    const report = async () =>
      (await (await stack.fetch('/v1/usage?group_by=outcome')).json()) as {
        data: { outcome: string; requests: number; prompt_tokens: number; completion_tokens: number }[];
      };
    await expect.poll(async () => (await report()).data.reduce((n, r) => n + r.requests, 0)).toBe(4);
    const rows = (await report()).data;
    expect(rows.filter((r) => r.outcome !== 'completed')).toEqual([
      { outcome: 'cancelled', requests: 2, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      { outcome: 'expired', requests: 1, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    ]);
    expect(rows.find((r) => r.outcome === 'completed')).toMatchObject({ requests: 1, completion_tokens: 40 });
    // Nothing of theirs reached the backend.
    expect(stack.sim!.stats().requests).toBe(1);
  });
});
