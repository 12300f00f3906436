import { ApiKeyStore, parseApiEnv } from '@llmgw/api';
import { EnvError } from '@llmgw/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

const limits = (rpm: number) => ({ requests_per_min: rpm, tokens_per_day: 100_000, priority: 2 });
const hi = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };

describe('tier names that every JavaScript object has', () => {
  it.each(['__proto__', 'constructor', 'prototype'])(
    'TIERS_JSON with a tier "%s" is refused, naming it',
    (name) => {
      const json = `{"${name}": ${JSON.stringify(limits(50))}, "free": ${JSON.stringify(limits(7))}}`;
      let err: unknown;
      try {
        parseApiEnv({ TIERS_JSON: json });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EnvError);
      expect((err as Error).message).toContain('invalid environment variable TIERS_JSON');
      expect((err as Error).message).toContain(`tier name "${name}" is reserved`);
    },
  );

  it('the same table without it parses (the refusal is about the name)', () => {
    const env = parseApiEnv({ TIERS_JSON: JSON.stringify({ gold: limits(50), free: limits(7) }) });
    expect(Object.keys(env.TIERS).sort()).toEqual(['free', 'gold']);
  });

  describe('a key or a header naming one is served as free, not 503', () => {
    let stack: Stack;
    const tiers = JSON.stringify({ free: limits(7), pro: limits(40) });
    beforeAll(async () => {
      stack = await startStack({ api: { TIERS_JSON: tiers }, sim: { ttftMs: 1, itlMs: 1 } });
    });
    afterAll(() => stack?.close());

    it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
      'api key with tier "%s"',
      async (tier) => {
        const { key } = await new ApiKeyStore(stack.redis, stack.keys).create(`user-${tier}`, tier);
        const res = await fetch(`${stack.apiUrl}/chat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
          body: JSON.stringify(hi),
        });
        expect(res.status).toBe(200);
        // Free's limit, not pro's or none.
        expect(res.headers.get('x-ratelimit-limit')).toBe('7');
      },
    );

    it('trusted_headers: X-User-Tier: constructor', async () => {
      const api = await stack.startApi({ AUTH_MODE: 'trusted_headers' });
      const res = await fetch(`${api.url}/chat`, {
        method: 'POST',
        headers: { 'x-user-id': 'header-user', 'x-user-tier': 'constructor' },
        body: JSON.stringify(hi),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('7');
      const pro = await fetch(`${api.url}/chat`, {
        method: 'POST',
        headers: { 'x-user-id': 'header-user-2', 'x-user-tier': 'pro' },
        body: JSON.stringify(hi),
      });
      expect(pro.headers.get('x-ratelimit-limit')).toBe('40');
    });
  });
});
