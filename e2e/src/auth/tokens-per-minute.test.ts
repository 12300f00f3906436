import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const LIMIT = 1000;
const MAX_TOKENS = 90;
const REQUESTS = 40;

/**
 * Tokens per minute across two api replicas on one Redis: each request reserves its prompt
 * estimate + max_tokens from the user's bucket in one atomic script, so a burst split between
 * the replicas is admitted exactly as far as the bucket holds. The simulator's slow first token
 * keeps every admitted job running through the burst: nothing is settled back meanwhile.
 */
describe('tokens_per_min holds exactly across 2 api replicas', () => {
  let stack: Stack;
  let second: string;
  beforeAll(async () => {
    stack = await startStack({
      tier: 'metered',
      sim: { ttftMs: 1500, itlMs: 1, maxNumSeqs: 64 },
      workers: [{ WORKER_CONCURRENCY: '64' }],
      api: {
        QUEUE_MAX_WAITING: '1000',
        TIERS_JSON: JSON.stringify({
          free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
          metered: {
            requests_per_min: 10_000,
            tokens_per_min: LIMIT,
            tokens_per_day: 10_000_000,
            priority: 1,
            max_concurrent: 1000,
            max_waiting: 1000,
          },
        }),
      },
    });
    second = (await stack.startApi()).url;
  });
  afterAll(() => stack?.close());

  it(`${REQUESTS} concurrent requests of ${MAX_TOKENS} max_tokens, half on each replica: admitted while the ${LIMIT}-token bucket holds them, not one more`, async () => {
    const urls = [stack.apiUrl, second];
    const results = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const res = await fetch(`${urls[i % 2]}/v1/chat/completions`, {
          method: 'POST',
          headers: { ...stack.authHeaders, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: DEFAULT_MODEL,
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: MAX_TOKENS,
          }),
        });
        const body = (await res.json()) as { error?: { code: string; requested: number; limit: number } };
        return { replica: i % 2, status: res.status, body, headers: res.headers };
      }),
    );
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(admitted.length + refused.length).toBe(REQUESTS);
    // What one request reserves, as the refusals say (prompt estimate + max_tokens).
    const reserved = refused[0]!.body.error!.requested;
    expect(reserved).toBeGreaterThan(MAX_TOKENS);
    for (const r of refused) {
      expect(r.body.error).toMatchObject({ code: 'rate_limit_exceeded', limit: LIMIT, requested: reserved });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get('x-ratelimit-limit-tokens')).toBe(String(LIMIT));
      expect(Number(r.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(reserved);
    }
    // The bucket refills 1000 a minute (17 a second): during a burst of well under a second that
    // is less than one more request's worth, so exactly as many as a full bucket holds pass.
    const fit = Math.floor(LIMIT / reserved);
    console.log(
      `tokens per minute: ${REQUESTS} requests of ${reserved} tokens each against ${LIMIT}: ` +
        `${admitted.length} admitted (replica 0: ${admitted.filter((r) => r.replica === 0).length}, ` +
        `replica 1: ${admitted.filter((r) => r.replica === 1).length}), ${refused.length} refused`,
    );
    expect(admitted.length).toBe(fit);
    expect(admitted.length * reserved).toBeLessThanOrEqual(LIMIT);
    // Both replicas decided on the one bucket: each refused some of its half once it was empty.
    expect(new Set(refused.map((r) => r.replica)).size).toBe(2);
  });
});
