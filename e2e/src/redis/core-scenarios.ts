import { randomUUID } from 'node:crypto';
import { ApiKeyStore } from '@llmgw/api';
import { DEFAULT_MODEL } from '@llmgw/config';
import { postSSE, until } from '@llmgw/devkit';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chatText, readFrames } from '../durable/sse-frames.ts';
import { WEATHER_TOOL } from '../stack/compat.ts';
import { type Stack, startStack } from '../stack/in-process.ts';

const ADMIN = 'admin-token-0123456789';
/** The clients give up on a failover that has not healed this long after the kill. */
const RECOVERY_BOUND_MS = 60_000;
const TIERS = JSON.stringify({
  free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
  enterprise: { requests_per_min: 100_000, tokens_per_day: 100_000_000, priority: 1 },
  five_rpm: { requests_per_min: 5, tokens_per_day: 100_000_000, priority: 2 },
  solo: { requests_per_min: 100_000, tokens_per_day: 100_000_000, priority: 2, max_concurrent: 1 },
});

/** A Redis deployment of a test's own, as the core scenarios need it. */
export interface Topology {
  /** For test names and the printed figures: `sentinel`, `cluster`. */
  name: string;
  /** What is killed under load, for the test name: `the primary`, `the queue's master`. */
  killed: string;
  /** Starts it; returns the Redis settings every service gets. */
  start(): Promise<Record<string, string>>;
  /** SIGKILLs the node that matters (called once the stack runs). */
  kill(): Promise<void>;
  /** Resolves true once the deployment has promoted a replica in its place. */
  failedOver(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * The core scenarios of the gateway on a Redis deployment of the test's own (issue 22), with two
 * api replicas and two workers: a stream and a tool round trip; resume across the apis,
 * Idempotency-Key and an async job; rate limits exact across the apis, fair share and Bull Board;
 * then the node that matters SIGKILLed under load, with the failover contract in numbers.
 */
export function coreScenarios(t: Topology): void {
  let stack: Stack;
  let second: string;
  const v1 = (base: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...stack.authHeaders, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const ask = (content: string, extra: Record<string, unknown> = {}) => ({
    model: DEFAULT_MODEL,
    messages: [{ role: 'user', content }],
    max_tokens: 24,
    ...extra,
  });
  /** Why the apis refused last (their log lines), for a failure message. */
  const lastReasons = () =>
    JSON.stringify(
      [...stack.logs.find('request_failed').slice(-2), ...stack.logs.find('queue_unavailable').slice(-2)].map(
        (l) => l.err,
      ),
    );
  const keyOf = async (tier: string) => {
    const user = `${tier}-${randomUUID().slice(0, 8)}`;
    return { user, key: (await new ApiKeyStore(stack.redis, stack.keys).create(user, tier)).key };
  };

  beforeAll(async () => {
    stack = await startStack({
      redisEnv: await t.start(),
      sim: { ttftMs: 5, itlMs: 10, outputTokens: 400, maxNumSeqs: 64 },
      api: { TIERS_JSON: TIERS, ADMIN_TOKEN: ADMIN, QUEUE_MAX_WAITING: '1000' },
      workers: [{ WORKER_CONCURRENCY: '16' }, { WORKER_CONCURRENCY: '16' }],
    });
    second = (await stack.startApi()).url;
  }, 90_000);
  afterAll(async () => {
    await stack?.close();
    await t.stop();
  });

  it('a stream, and a streamed tool call round trip with the openai SDK', async () => {
    const res = await stack.chat({ messages: [{ role: 'user', content: `hello ${t.name}` }], max_tokens: 8 });
    expect(res.status).toBe(200);
    expect(res.data.at(-1)).toBe('[DONE]');
    const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
    const tools = [{ type: 'function' as const, function: WEATHER_TOOL }];
    const q = { role: 'user' as const, content: 'Weather in Oslo?' };
    const first = await client.chat.completions
      .stream({ model: DEFAULT_MODEL, messages: [q], tools })
      .finalChatCompletion();
    const call = first.choices[0]!.message.tool_calls![0]!;
    const answer = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [
        q,
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: call.id, content: '{"temp_c":3}' },
      ],
      tools,
      max_tokens: 8,
    });
    expect(answer.choices[0]!.message.content).toMatch(/\w/);
    const sent = stack.sim!.requests().at(-1)!.body as { messages: { role: string; content: unknown }[] };
    expect(sent.messages.at(-1)).toMatchObject({ role: 'tool', content: '{"temp_c":3}' });
  });

  it('resume across the two apis, Idempotency-Key, and an async job', async () => {
    const body = ask(`Resume me on ${t.name}`, { stream: true, seed: 3, max_tokens: 40 });
    const init = (headers: Record<string, string>) => ({
      method: 'POST',
      headers: { ...stack.authHeaders, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const whole = await readFrames(`${stack.apiUrl}/v1/chat/completions`, init({}));
    const cut = await readFrames(`${stack.apiUrl}/v1/chat/completions`, {
      ...init({ prefer: 'resumable' }),
      stopAfter: 4,
    });
    const resumed = await readFrames(`${second}/v1/jobs/${cut.headers.get('x-job-id')}/events`, {
      headers: { ...stack.authHeaders, 'last-event-id': String(cut.frames.at(-1)!.id) },
    });
    expect(chatText([...cut.frames, ...resumed.frames])).toBe(chatText(whole.frames));

    const key = randomUUID();
    const a = await v1(stack.apiUrl, ask('once'), { 'idempotency-key': key });
    const b = await v1(second, ask('once'), { 'idempotency-key': key });
    expect(b.headers.get('x-job-id')).toBe(a.headers.get('x-job-id'));
    expect(await b.json()).toEqual(await a.json());

    const later = await v1(second, ask('later'), { prefer: 'respond-async' });
    expect(later.status).toBe(202);
    const { id } = (await later.json()) as { id: string };
    expect(
      await until(async () => {
        const s = (await (await stack.fetch(`/v1/jobs/${id}`)).json()) as { status: string };
        return s.status === 'completed';
      }),
    ).toBe(true);
  });

  it('rate limits exact across the two apis; fair share caps a user; Bull Board lists the queue', async () => {
    const { key } = await keyOf('five_rpm');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        v1(i % 2 ? second : stack.apiUrl, ask(`rl ${i}`, { max_tokens: 2 }), {
          authorization: `Bearer ${key}`,
        }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(5);

    const solo = await keyOf('solo');
    let refused: number | undefined;
    const long = postSSE(
      `${stack.apiUrl}/chat`,
      { messages: [{ role: 'user', content: 'hold' }], max_tokens: 60 },
      {
        headers: { authorization: `Bearer ${solo.key}` },
        onData: () => {
          if (refused === undefined) {
            refused = 0;
            void v1(second, ask('second'), { authorization: `Bearer ${solo.key}` }).then((r) => {
              refused = r.status;
            });
          }
          return undefined;
        },
      },
    );
    expect((await long).status).toBe(200);
    expect(await until(() => refused !== undefined && refused !== 0)).toBe(true);
    expect(refused).toBe(429);

    const board = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(board.status).toBe(200);
    expect(JSON.stringify(await board.json())).toContain(stack.keys.queueName(DEFAULT_MODEL));
  });

  it(`${t.killed} SIGKILLed under load (100 streams, 20 at a time): no hung stream, no job twice at the backend, retryable 503s only, recovery without a restart`, async () => {
    const { key } = await keyOf('enterprise');
    const headers = { authorization: `Bearer ${key}` };
    const before = stack.sim!.stats().requests;
    const outcomes: { end: 'done' | 'error' | 'none'; error?: string; refusals: number }[] = [];
    const refusals: number[] = [];
    let next = 0;
    let killedAt = 0;
    let lastRefusedAt = 0;
    let lastRefusal = '';
    // Each client retries a 503 after its Retry-After, as the SDKs do, until its stream runs.
    const run = async () => {
      while (next < 100) {
        const i = next++;
        if (i === 30) {
          killedAt = Date.now();
          void t.kill();
        }
        for (let tries = 0; ; tries++) {
          // A failover that never completes fails here, saying so, rather than at the test's timeout.
          if (killedAt > 0 && Date.now() - killedAt > RECOVERY_BOUND_MS) {
            throw new Error(
              `still refused ${RECOVERY_BOUND_MS} ms after the kill: ${refusals.length} refusals, the last: ${lastRefusal}; ` +
                `the api's last reasons: ${lastReasons()}`,
            );
          }
          const res = await postSSE(
            `${(i + tries) % 2 ? second : stack.apiUrl}/v1/chat/completions`,
            ask(`load ${i}`, { stream: true, max_tokens: 40 }),
            { headers, timeoutMs: 60_000 },
          );
          if (res.status !== 200) {
            refusals.push(res.status);
            lastRefusedAt = Date.now();
            lastRefusal = `${res.status} ${res.body.slice(0, 300)}`;
            expect(res.headers['retry-after']).toBeDefined();
            await new Promise((r) => setTimeout(r, 1000 * Number(res.headers['retry-after'])));
            continue;
          }
          const last = res.data.at(-1);
          const end = last === '[DONE]' ? 'done' : last?.includes('"error"') ? 'error' : 'none';
          outcomes.push({
            end,
            ...(end === 'error' && { error: (JSON.parse(last!) as { error: { code: string } }).error.code }),
            refusals: tries,
          });
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, run));
    // Each of the 100 streams ran to its end, so each reached the backend once: any request more
    // is a job run twice.
    const duplicates = stack.sim!.stats().requests - before - 100;
    expect(await t.failedOver()).toBe(true);
    // Recovered without a restart: a request on each api succeeds.
    let recoveredAt = 0;
    let notYet: string[] = [];
    expect(
      await until(
        async () => {
          const ok = await Promise.all(
            [stack.apiUrl, second].map((u) => v1(u, ask('after', { max_tokens: 2 }), headers)),
          );
          if (ok.every((r) => r.status === 200)) recoveredAt = Date.now();
          else notYet = await Promise.all(ok.map(async (r, i) => `api ${i}: ${r.status} ${await r.text()}`));
          return recoveredAt > 0;
        },
        30_000,
        200,
      ),
      `not recovered 30 s after the streams: ${notYet.join('; ')}; the api's last reasons: ${lastReasons()}`,
    ).toBe(true);
    const hung = outcomes.filter((o) => o.end === 'none');
    const failed = outcomes.filter((o) => o.end === 'error');
    console.log(
      `${t.name} failover: ${outcomes.length} streams; ${refusals.length} refusals before a stream ` +
        `(${[...new Set(refusals)].join(', ') || 'none'}, each with Retry-After, retried); ` +
        `${failed.length} ended with an error frame (${JSON.stringify(failed.map((f) => f.error))}); ` +
        `${hung.length} hung; ${duplicates} run twice at the backend; ` +
        `refusals for ${lastRefusedAt === 0 ? 0 : lastRefusedAt - killedAt} ms after the kill`,
    );
    expect(outcomes).toHaveLength(100);
    expect(hung).toEqual([]);
    expect(duplicates).toBe(0);
    expect([...new Set(refusals)].filter((s) => s !== 503)).toEqual([]);
    for (const f of failed) expect(f.error).toMatch(/^(internal_error|worker_lost|backend_unavailable)$/);
  }, 150_000);
}
