import { DEFAULT_MODEL } from '@llmgw/config';
import { type RedisServerHandle, spawnRedisServer, until } from '@llmgw/devkit';
import { afterEach, describe, expect, it } from 'vitest';
import { chatText, type Frame, readFrames } from '../durable/sse-frames.ts';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * Redis goes away under a running stream (issue 22). Before: a restart of 3 s ended the stream
 * with `lost 183 event(s)`, every resume failed the same way, and the job's status later read
 * `completed` with the middle of its text missing. Now the stream, a resume and the status agree:
 * the whole text and `completed` (the worker kept the events Redis refused and wrote them, in
 * order, once it was back), or, past the worker's backlog, an error and `failed` with the reason.
 */
describe('Redis restarted mid-stream', () => {
  let stack: Stack | undefined;
  let redis: RedisServerHandle | undefined;
  afterEach(async () => {
    await stack?.close();
    await redis?.stop();
    stack = undefined;
    redis = undefined;
  });

  const TOKENS = 600;
  const body = (content: string) => ({
    model: DEFAULT_MODEL,
    messages: [{ role: 'user', content }],
    max_tokens: TOKENS,
    stream: true,
  });
  const post = (s: Stack, b: unknown, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { ...s.authHeaders, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(b),
  });
  const lastData = (frames: readonly Frame[]) => frames.at(-1)?.data ?? '';
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** A stack on a Redis of the test's own, persisted (AOF, fsync always) across the restart. */
  async function start(env: { api?: Record<string, string>; worker?: Record<string, string> } = {}) {
    redis = await spawnRedisServer({ persist: true });
    stack = await startStack({
      redisUrl: redis.url,
      sim: { ttftMs: 5, itlMs: 10, outputTokens: TOKENS },
      ...(env.api && { api: env.api }),
      workers: [env.worker ?? {}],
    });
    stack.redis.on('error', () => {});
    return stack;
  }

  /** Streams `content` resumably and takes Redis away for `downMs` once tokens flow. */
  async function streamThroughOutage(s: Stack, content: string, downMs: number) {
    const pending = readFrames(
      `${s.apiUrl}/v1/chat/completions`,
      post(s, body(content), { prefer: 'resumable' }),
    );
    expect(await until(() => s.sim!.stats().running === 1)).toBe(true);
    await sleep(800);
    await redis!.kill();
    await sleep(downMs);
    await redis!.restart();
    const live = await pending;
    return { live, jobId: live.headers.get('x-job-id')! };
  }

  /** The job's status once it is over (`completed`, `failed`, …). */
  async function finalStatus(s: Stack, jobId: string) {
    let job: Record<string, unknown> = {};
    const over = await until(async () => {
      const res = await s.fetch(`/v1/jobs/${jobId}`);
      if (res.status !== 200) return false;
      job = (await res.json()) as Record<string, unknown>;
      return job.status !== 'queued' && job.status !== 'in_progress';
    }, 20_000);
    expect(over).toBe(true);
    return job as {
      status: string;
      result?: { choices: { message: { content: string } }[] } | null;
      error?: { type: string; message: string };
      usage?: { completion_tokens: number };
    };
  }

  const bullState = async (s: Stack, jobId: string, state: 'completed' | 'failed') =>
    (await s.redis.zscore(`${s.keys.bullPrefix}:${s.keys.queueName(DEFAULT_MODEL)}:${state}`, jobId)) !==
    null;

  it('down 3 s: the stream, a resume and the status all hold the whole text, and the job is completed', async () => {
    const s = await start();
    const whole = chatText(
      (await readFrames(`${s.apiUrl}/v1/chat/completions`, post(s, body('whole')))).frames,
    );
    expect(whole.length).toBeGreaterThan(2000);

    const { live, jobId } = await streamThroughOutage(s, 'whole', 3000);
    expect(lastData(live.frames)).toBe('[DONE]');
    expect(chatText(live.frames)).toBe(whole);
    // The outage did hit this stream: the worker held its events and wrote them afterwards.
    const msgs = s.logs.lines.map((l) => l.msg);
    expect(msgs).toContain('publish_failed_retrying');
    expect(msgs).toContain('publish_recovered');
    expect(msgs).not.toContain('job_events_lost');

    const job = await finalStatus(s, jobId);
    expect(job.status).toBe('completed');
    expect(job.result?.choices[0]?.message.content).toBe(whole);
    expect(job.usage?.completion_tokens).toBe(TOKENS);

    const resumed = await readFrames(`${s.apiUrl}/v1/jobs/${jobId}/events?after=-1`, {
      headers: s.authHeaders,
    });
    expect(lastData(resumed.frames)).toBe('[DONE]');
    expect(chatText(resumed.frames)).toBe(whole);
    expect(await bullState(s, jobId, 'completed')).toBe(true);
  }, 60_000);

  it('down longer than the worker holds events (10 s): the stream, a resume and the status all say failed, and why', async () => {
    // A follower that waits out the outage, and a lock that outlives it: only the backlog ends it.
    const s = await start({ api: { JOB_SILENCE_TIMEOUT_MS: '60000' }, worker: { JOB_LOCK_MS: '60000' } });
    const { live, jobId } = await streamThroughOutage(s, 'too long', 11_500);
    const end = JSON.parse(lastData(live.frames)) as { error: { code: string; message: string } };
    expect(end.error.code).toBe('internal_error');
    expect(end.error.message).toMatch(/could not be written to Redis/);
    expect(s.logs.lines.map((l) => l.msg)).toContain('job_events_lost');

    const job = await finalStatus(s, jobId);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ type: 'internal_error', message: end.error.message });
    expect(job.result).toBeUndefined();

    const resumed = await readFrames(`${s.apiUrl}/v1/jobs/${jobId}/events?after=-1`, {
      headers: s.authHeaders,
    });
    expect(JSON.parse(lastData(resumed.frames))).toMatchObject({ error: { message: end.error.message } });
    expect(chatText(resumed.frames)).toBe(chatText(live.frames));
    expect(await until(() => bullState(s, jobId, 'failed'))).toBe(true);
  }, 60_000);
});

/**
 * A log with a hole that its worker never knew of (a Redis that lost writes it had acknowledged:
 * a failover to a lagging replica, AOF `everysec`): the status route and the replay check the
 * sequence numbers as the live stream does.
 */
describe('a job log with a hole', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  it('reads failed with the reason, never completed with text missing; a resume ends with an error', async () => {
    stack = await startStack({ sim: { ttftMs: 2, itlMs: 2, outputTokens: 40 } });
    const b = {
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'hole' }],
      max_tokens: 40,
      stream: true,
    };
    const first = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...stack.authHeaders, 'content-type': 'application/json' },
      body: JSON.stringify(b),
    });
    expect(first.frames.at(-1)?.data).toBe('[DONE]');
    const jobId = first.headers.get('x-job-id')!;
    const eventsKey = stack.keys.jobEvents(jobId);
    const entries = await stack.redis.xrange(eventsKey, '-', '+');
    const deltas = entries.filter(([, f]) => f[1]?.includes('"type":"delta"'));
    expect(deltas.length).toBeGreaterThan(2);
    await stack.redis.xdel(eventsKey, deltas[1]![0]);

    const job = (await (await stack.fetch(`/v1/jobs/${jobId}`)).json()) as Record<string, unknown>;
    expect(job).toMatchObject({ status: 'failed', error: { type: 'internal_error' } });
    expect((job.error as { message: string }).message).toMatch(/missing 1 event/);
    expect(job.result).toBeUndefined();
    const list = (await (await stack.fetch('/v1/jobs')).json()) as { data: { id: string; status: string }[] };
    expect(list.data.find((j) => j.id === jobId)?.status).toBe('failed');

    const replay = await readFrames(`${stack.apiUrl}/v1/jobs/${jobId}/events?after=-1`, {
      headers: stack.authHeaders,
    });
    expect(JSON.parse(replay.frames.at(-1)!.data)).toMatchObject({ error: { code: 'internal_error' } });
  });
});
