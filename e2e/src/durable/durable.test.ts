import { randomUUID } from 'node:crypto';
import { DEFAULT_MODEL } from '@llmgw/config';
import { until } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../stack/common.ts';
import { type Stack, startStack } from '../stack/in-process.ts';
import { chatText, type Frame, readFrames } from './sse-frames.ts';

/** The answer's text in the seed's frames (`token`) or Anthropic's (`text_delta`). */
const textOf = (frames: readonly Frame[]) =>
  frames
    .map((f) => {
      if (f.data === '[DONE]') return '';
      const d = JSON.parse(f.data) as { token?: string; delta?: { type?: string; text?: string } };
      return d.token ?? (d.delta?.type === 'text_delta' ? d.delta.text : '') ?? '';
    })
    .join('');

const ADMIN = 'admin-token-0123456789';

/** Waits for `pred`, and fails the test if it never holds. */
const eventually = async (pred: () => boolean | Promise<boolean>) => expect(await until(pred)).toBe(true);

/**
 * Durable generations across two api replicas and two workers: every frame has an id, a client
 * that lost its connection resumes on the other replica exactly after its last frame, a
 * finished job replays byte for byte, Idempotency-Key retries attach to the first job, async
 * jobs run without a client, and only their user sees them.
 */
describe('durable generations', () => {
  let stack: Stack;
  let second: string;
  const ask = (content: string, extra: Record<string, unknown> = {}) => ({
    model: DEFAULT_MODEL,
    messages: [{ role: 'user', content }],
    max_tokens: 30,
    seed: 11,
    ...extra,
  });
  const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { ...stack.authHeaders, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  /** Asks for the job to outlive a dropped connection (else the client's leaving cancels it). */
  const RESUMABLE = { prefer: 'resumable' };
  const backendCalls = () => (stack.sim as unknown as { requests(): unknown[] }).requests().length;
  const ids = (frames: readonly Frame[]) => frames.map((f) => f.id);

  beforeAll(async () => {
    stack = await startStack({
      sim: { ttftMs: 5, itlMs: 8, outputTokens: 400 },
      api: { RESUME_GRACE_MS: '1500', ADMIN_TOKEN: ADMIN },
      workers: [{}, {}],
    });
    second = (await stack.startApi()).url;
  });
  afterAll(() => stack?.close());

  it('a stream cut after 6 frames resumes on the other replica after its last id: the same text as an uninterrupted run', async () => {
    const body = ask('Tell me about durable logs', { stream: true });
    const whole = await readFrames(`${stack.apiUrl}/v1/chat/completions`, post(body));
    expect(whole.status).toBe(200);
    expect(ids(whole.frames)).toEqual(whole.frames.map((_, i) => i));

    const cut = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      ...post(body, RESUMABLE),
      stopAfter: 6,
    });
    expect(cut.cut).toBe(true);
    const jobId = cut.headers.get('x-job-id')!;
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    const last = cut.frames.at(-1)!.id!;

    const resumed = await readFrames(`${second}/v1/jobs/${jobId}/events`, {
      headers: { ...stack.authHeaders, 'last-event-id': String(last) },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.frames[0]!.id).toBe(last + 1);
    const joined = [...cut.frames, ...resumed.frames];
    expect(ids(joined)).toEqual(joined.map((_, i) => i));
    expect(chatText([...cut.frames, ...resumed.frames])).toBe(chatText(whole.frames));
    expect(chatText(whole.frames).length).toBeGreaterThan(20);
    expect(resumed.frames.at(-1)!.data).toBe('[DONE]');
  });

  it('a finished job replays whole, byte for byte, from any replica (?after=-1), and from the middle with ?after', async () => {
    const original = await readFrames(
      `${stack.apiUrl}/v1/chat/completions`,
      post(ask('Replay me', { stream: true, stream_options: { include_usage: true } })),
    );
    const jobId = original.headers.get('x-job-id')!;
    const replay = await readFrames(`${second}/v1/jobs/${jobId}/events?after=-1`, {
      headers: stack.authHeaders,
    });
    expect(replay.frames.map((f) => f.raw).join('')).toBe(original.frames.map((f) => f.raw).join(''));
    const tail = await readFrames(`${second}/v1/jobs/${jobId}/events?after=3`, {
      headers: stack.authHeaders,
    });
    expect(tail.frames.map((f) => f.raw)).toEqual(original.frames.slice(4).map((f) => f.raw));

    // Only a plain decimal integer ≥ -1: an empty `after` would otherwise skip frame 0.
    for (const after of ['x', '', '0x10', '1e3', '+7', '-2', '1.0', ' 1']) {
      const bad = await fetch(`${second}/v1/jobs/${jobId}/events?after=${encodeURIComponent(after)}`, {
        headers: stack.authHeaders,
      });
      expect(bad.status, `after=${after}`).toBe(400);
      expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('after');
    }
    for (const id of ['', '0x1', '1e1', '+3']) {
      const bad = await fetch(`${second}/v1/jobs/${jobId}/events`, {
        headers: { ...stack.authHeaders, 'last-event-id': id },
      });
      expect(bad.status, `Last-Event-ID: ${id}`).toBe(400);
    }
  });

  it('Anthropic and seed streams resume too, in their own frame format', async () => {
    for (const [path, body] of [
      ['/v1/messages', { ...ask('Anthropic resume'), stream: true }],
      ['/chat', { messages: [{ role: 'user', content: 'seed resume' }], max_tokens: 20 }],
    ] as const) {
      const whole = await readFrames(`${stack.apiUrl}${path}`, post(body));
      const cut = await readFrames(`${stack.apiUrl}${path}`, { ...post(body, RESUMABLE), stopAfter: 4 });
      const resumed = await readFrames(`${second}/v1/jobs/${cut.headers.get('x-job-id')}/events`, {
        headers: { ...stack.authHeaders, 'last-event-id': String(cut.frames.at(-1)!.id) },
      });
      // Same prompt, same text; the frames themselves may batch differently in two jobs.
      const all = [...cut.frames, ...resumed.frames];
      expect(all.map((f) => f.id)).toEqual(all.map((_, i) => i));
      expect(textOf(all)).toBe(textOf(whole.frames));
      expect(textOf(whole.frames).length).toBeGreaterThan(10);
    }
  });

  it('two viewers follow one running job and see the same frames', async () => {
    const cut = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      ...post(ask('Two viewers', { stream: true, max_tokens: 40 }), RESUMABLE),
      stopAfter: 2,
    });
    const url = (base: string) => `${base}/v1/jobs/${cut.headers.get('x-job-id')}/events`;
    const [a, b] = await Promise.all([
      readFrames(url(stack.apiUrl), { headers: stack.authHeaders }),
      readFrames(url(second), { headers: stack.authHeaders }),
    ]);
    expect(a.frames.map((f) => f.raw)).toEqual(b.frames.map((f) => f.raw));
    expect(a.frames.at(-1)!.data).toBe('[DONE]');
  });

  it('a resumable request whose client does not come back within RESUME_GRACE_MS: the backend is aborted, the job ends cancelled', async () => {
    const abortedBefore = stack.sim!.stats().aborted;
    const cut = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      ...post(ask('Nobody comes back', { stream: true, max_tokens: 400 }), RESUMABLE),
      stopAfter: 3,
    });
    const jobId = cut.headers.get('x-job-id')!;
    await eventually(() => stack.logs.find('client_left_job_continues').some((l) => l.job_id === jobId));
    // Still running inside the grace: a status says so.
    const during = (await (await stack.fetch(`/v1/jobs/${jobId}`)).json()) as { status: string };
    expect(during.status).toBe('in_progress');
    await eventually(() => stack.sim!.stats().aborted > abortedBefore);
    await eventually(async () => {
      const s = (await (await stack.fetch(`/v1/jobs/${jobId}`)).json()) as { status: string };
      return s.status === 'cancelled';
    });
    expect(stack.logs.find('nobody_following').some((l) => l.job_id === jobId)).toBe(true);
  });

  it('Idempotency-Key: a retry gets the same body and starts no second generation; another body is a 422', async () => {
    const key = randomUUID();
    const body = ask('Charge me once', { max_tokens: 12 });
    const calls = backendCalls();
    const first = await fetch(`${stack.apiUrl}/v1/chat/completions`, post(body, { 'idempotency-key': key }));
    const retry = await fetch(`${second}/v1/chat/completions`, post(body, { 'idempotency-key': key }));
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('x-job-id')).toBe(first.headers.get('x-job-id'));
    expect(await retry.json()).toEqual(await first.json());
    expect(backendCalls()).toBe(calls + 1);

    const streamKey = randomUUID();
    const streamed = ask('Stream me once', { stream: true });
    const s1 = await readFrames(
      `${stack.apiUrl}/v1/chat/completions`,
      post(streamed, { 'idempotency-key': streamKey }),
    );
    const s2 = await readFrames(
      `${second}/v1/chat/completions`,
      post(streamed, { 'idempotency-key': streamKey }),
    );
    expect(s2.frames.map((f) => f.raw).join('')).toBe(s1.frames.map((f) => f.raw).join(''));
    expect(backendCalls()).toBe(calls + 2);

    const reused = await fetch(
      `${stack.apiUrl}/v1/chat/completions`,
      post(ask('Another prompt'), { 'idempotency-key': key }),
    );
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reused');
    expect(backendCalls()).toBe(calls + 2);
  });

  it('concurrent retries with one Idempotency-Key (free tier) attach to the first job instead of taking places; reordered keys are the same body', async () => {
    const free = await createApiKey(stack.redis, stack.prefix, `free-${randomUUID()}`, 'free');
    const key = randomUUID();
    const tool = (schema: Record<string, unknown>) => ({
      type: 'function',
      function: { name: 'get_weather', parameters: schema },
    });
    const body = ask('Race me', {
      max_tokens: 8,
      tools: [tool({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] })],
      tool_choice: 'none',
    });
    const calls = backendCalls();
    const send = (url: string, b: unknown) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...free.headers, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(b),
      });
    const racing = await Promise.all(
      Array.from({ length: 9 }, (_, i) => send(i % 2 ? second : stack.apiUrl, body)),
    );
    expect(racing.map((r) => r.status)).toEqual(Array(9).fill(200));
    const jobIds = new Set(racing.map((r) => r.headers.get('x-job-id')));
    expect(jobIds.size).toBe(1);
    const bodies = await Promise.all(racing.map((r) => r.json()));
    for (const b of bodies) expect(b).toEqual(bodies[0]);
    expect(backendCalls()).toBe(calls + 1);
    // The same request with its keys in another order, at every depth: a replay, not a 422.
    const reordered = {
      tool_choice: 'none',
      tools: [tool({ required: ['city'], properties: { city: { type: 'string' } }, type: 'object' })],
      max_tokens: 8,
      seed: 11,
      messages: [{ content: 'Race me', role: 'user' }],
      model: DEFAULT_MODEL,
    };
    const replay = await send(second, reordered);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-job-id')).toBe([...jobIds][0]);
    expect(backendCalls()).toBe(calls + 1);
  });

  it('JSON nested 10,000 deep: 400 invalid_json (not a 503 that SDKs retry), and no job shows up', async () => {
    const user = await createApiKey(stack.redis, stack.prefix, `deep-${randomUUID()}`);
    const deep = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    const res = await fetch(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...user.headers, 'content-type': 'application/json' },
      body: `{"messages":[{"role":"user","content":"hi"}],"metadata":{"x":${deep}}}`,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    const list = (await (await fetch(`${second}/v1/jobs`, { headers: user.headers })).json()) as {
      data: unknown[];
    };
    expect(list.data).toEqual([]);
    expect(await stack.redis.exists(stack.keys.userJobs(user.userId))).toBe(0);
  });

  it('an Idempotency-Key asks for the grace: its stream cut mid-way keeps generating, and the retry (another replica) attaches and ends it', async () => {
    const key = randomUUID();
    const body = ask('Retry me after a drop', { stream: true, max_tokens: 60 });
    const whole = await readFrames(`${stack.apiUrl}/v1/chat/completions`, post(body));
    const calls = backendCalls();
    const cut = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      ...post(body, { 'idempotency-key': key }),
      stopAfter: 3,
    });
    expect(cut.headers.get('preference-applied')).toBe('resumable');
    const jobId = cut.headers.get('x-job-id')!;
    await eventually(() => stack.logs.find('client_left_job_continues').some((l) => l.job_id === jobId));
    const retry = await readFrames(`${second}/v1/chat/completions`, post(body, { 'idempotency-key': key }));
    expect(retry.headers.get('x-job-id')).toBe(jobId);
    expect(retry.frames.at(-1)!.data).toBe('[DONE]');
    expect(chatText(retry.frames)).toBe(chatText(whole.frames));
    expect(backendCalls()).toBe(calls + 1);
  });

  it('Prefer: respond-async: 202 with Location, then queued/in_progress → completed with the non-streaming body', async () => {
    const res = await fetch(
      `${stack.apiUrl}/v1/chat/completions`,
      post(ask('Later, please'), { prefer: 'respond-async' }),
    );
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { id: string; status: string; position: number };
    expect(accepted).toMatchObject({ status: 'queued', position: expect.any(Number) });
    expect(res.headers.get('location')).toBe(`/v1/jobs/${accepted.id}`);

    let job: Record<string, unknown> = {};
    await eventually(async () => {
      job = (await (
        await fetch(`${second}${res.headers.get('location')}`, { headers: stack.authHeaders })
      ).json()) as Record<string, unknown>;
      return job.status === 'completed';
    });
    expect(job).toMatchObject({
      id: accepted.id,
      object: 'job',
      async: true,
      usage: { completion_tokens: expect.any(Number) },
      result: {
        object: 'chat.completion',
        choices: [{ message: { role: 'assistant', content: expect.any(String) } }],
      },
    });
    const list = (await (await stack.fetch('/v1/jobs')).json()) as { data: { id: string }[] };
    expect(list.data.map((j) => j.id)).toContain(accepted.id);
  });

  it('an async job runs with nobody following, and POST /v1/jobs/{id}/cancel stops it mid-generation', async () => {
    const abortedBefore = stack.sim!.stats().aborted;
    const res = await fetch(
      `${stack.apiUrl}/chat`,
      post(
        { messages: [{ role: 'user', content: 'long async' }], max_tokens: 400, stream: false },
        { prefer: 'respond-async' },
      ),
    );
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await eventually(
      async () =>
        ((await (await stack.fetch(`/v1/jobs/${id}`)).json()) as { status: string }).status === 'in_progress',
    );
    const cancel = await fetch(`${second}/v1/jobs/${id}/cancel`, {
      method: 'POST',
      headers: stack.authHeaders,
    });
    expect(await cancel.json()).toMatchObject({ id, status: 'cancelled' });
    await eventually(() => stack.sim!.stats().aborted > abortedBefore);
    const after = (await (await stack.fetch(`/v1/jobs/${id}`)).json()) as Record<string, unknown>;
    expect(after).toMatchObject({ status: 'cancelled', error: { type: 'cancelled' } });
  });

  it('only its user sees a job: 404 for anyone else, on every route; the list is per user', async () => {
    const res = await fetch(`${stack.apiUrl}/v1/chat/completions`, post(ask('Mine only', { max_tokens: 5 })));
    const jobId = res.headers.get('x-job-id')!;
    const other = await createApiKey(stack.redis, stack.prefix, `other-${randomUUID()}`);
    for (const [method, path] of [
      ['GET', `/v1/jobs/${jobId}`],
      ['GET', `/v1/jobs/${jobId}/events`],
      ['POST', `/v1/jobs/${jobId}/cancel`],
      ['GET', `/v1/jobs/${randomUUID()}`],
    ] as const) {
      const r = await fetch(`${second}${path}`, { method, headers: other.headers });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    const list = (await (await fetch(`${second}/v1/jobs`, { headers: other.headers })).json()) as {
      data: unknown[];
    };
    expect(list.data).toEqual([]);
    expect((await stack.fetch(`/v1/jobs/${jobId}`)).status).toBe(200);

    // The admin token sees any user's job; a user's key does not open /admin.
    const admin = { authorization: `Bearer ${ADMIN}` };
    const status = await fetch(`${second}/admin/jobs/${jobId}`, { headers: admin });
    expect(await status.json()).toMatchObject({ id: jobId, status: 'completed', user_id: 'test-user' });
    const replay = await readFrames(`${second}/admin/jobs/${jobId}/events`, { headers: admin });
    expect(replay.status).toBe(200);
    expect((await fetch(`${second}/admin/jobs/${jobId}`, { headers: other.headers })).status).toBe(401);
  });
});

describe('durable generations: retention and bounds', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      sim: { ttftMs: 1, itlMs: 1, outputTokens: 400, maxNumSeqs: 64 },
      api: {
        JOB_RESULT_TTL_S: '600',
        JOB_LOG_MAX_EVENTS: '16',
        RESUME_GRACE_MS: '0',
        QUEUE_MAX_WAITING: '2000',
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          bulk: { requests_per_min: 1_000_000, tokens_per_day: 1_000_000_000, priority: 1 },
        }),
      },
      tier: 'bulk',
      workers: [{ WORKER_CONCURRENCY: '64' }],
    });
  });
  afterAll(() => stack?.close());

  it('1,000 finished jobs: no log longer than JOB_LOG_MAX_EVENTS, every key expiring within JOB_RESULT_TTL_S', async () => {
    const jobs: string[] = [];
    let issued = 0;
    const run = async () => {
      while (issued++ < 1000) {
        const r = await stack.fetch('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            messages: [{ role: 'user', content: `job ${jobs.length}` }],
            max_tokens: 24,
          }),
        });
        expect(r.status).toBe(200);
        jobs.push(r.headers.get('x-job-id')!);
        await r.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 64 }, run));
    const logs = jobs.map((id) => stack.keys.jobEvents(id));
    const pipe = stack.redis.pipeline();
    for (const k of logs) pipe.xlen(k).pttl(k).memory('USAGE', k);
    for (const id of jobs) pipe.pttl(stack.keys.job(id)).memory('USAGE', stack.keys.job(id));
    const results = ((await pipe.exec()) ?? []).map(([, v]) => Number(v));
    let bytes = 0;
    let trimmed = 0;
    for (let i = 0; i < logs.length; i++) {
      const [len, ttl, mem] = results.slice(i * 3, i * 3 + 3) as [number, number, number];
      expect(len).toBeLessThanOrEqual(16);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600_000);
      if (len === 16) trimmed++;
      bytes += mem;
    }
    const metaBase = logs.length * 3;
    for (let i = 0; i < jobs.length; i++) {
      const ttl = results[metaBase + i * 2]!;
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600_000);
      bytes += results[metaBase + i * 2 + 1]!;
    }
    console.log(
      `durable: 1000 jobs × 24 tokens, log cap 16: ${(bytes / 1000 / 1024).toFixed(1)} KiB per job in Redis, ${trimmed} logs at the cap`,
    );

    // A job whose log lost its start cannot be replayed: a clear 410, not a half stream.
    const long = await stack.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'long one' }],
        max_tokens: 200,
        stream: true,
      }),
    });
    await long.text();
    const replay = await stack.fetch(`/v1/jobs/${long.headers.get('x-job-id')}/events`);
    expect(replay.status).toBe(410);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe('job_log_trimmed');
  });

  it('JOB_RESULT_TTL_S after its end, a job is gone: its log, its record, its status (404)', async () => {
    const shortLived = await stack.startApi({ JOB_RESULT_TTL_S: '1' });
    const r = await fetch(`${shortLived.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...stack.authHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'brief' }], max_tokens: 4 }),
    });
    const jobId = r.headers.get('x-job-id')!;
    await r.arrayBuffer();
    expect((await stack.fetch(`/v1/jobs/${jobId}`)).status).toBe(200);
    await eventually(async () => (await stack.fetch(`/v1/jobs/${jobId}`)).status === 404);
    expect(await stack.redis.exists(stack.keys.jobEvents(jobId), stack.keys.job(jobId))).toBe(0);
  });
});
