import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedis, quitQuietly, waitReady } from './connection.ts';
import { createKeys } from './keys.ts';
import {
  endOfUtcDay,
  endOfUtcMonth,
  rateLimit,
  reserveQuota,
  settleHold,
  settleQuota,
  takeTokens,
  utcDay,
  utcMonth,
} from './limits.ts';

const redis = createRedis(inject('redisUrl'), 'command', 'limits-test');
const keys = createKeys(`test-${randomUUID()}`);
beforeAll(() => waitReady(redis));
afterAll(async () => {
  const k = await redis.keys(`${keys.prefix}:*`);
  if (k.length) await redis.del(...k);
  await quitQuietly(redis);
});

describe('rate-limit-1.lua', () => {
  it('admits exactly `limit` of many concurrent decisions', async () => {
    const key = keys.rateLimit('burst');
    const decisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) => rateLimit(redis, key, 50, 60_000, `m${i}`)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    expect(await redis.zcard(key)).toBe(50);
  });

  it('a refused request does not consume the window; reset tells when one passes again', async () => {
    const key = keys.rateLimit('slide');
    const first = await rateLimit(redis, key, 2, 400, 'a');
    expect(first).toMatchObject({ allowed: true, remaining: 1 });
    await rateLimit(redis, key, 2, 400, 'b');
    for (let i = 0; i < 5; i++) {
      const refused = await rateLimit(redis, key, 2, 400, `r${i}`);
      expect(refused.allowed).toBe(false);
      expect(refused.resetMs).toBeGreaterThan(0);
      expect(refused.resetMs).toBeLessThanOrEqual(400);
    }
    expect(await redis.zcard(key)).toBe(2);
    const { resetMs } = await rateLimit(redis, key, 2, 400, 'x');
    await new Promise((r) => setTimeout(r, resetMs + 20));
    expect((await rateLimit(redis, key, 2, 400, 'c')).allowed).toBe(true);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(400);
  });
});

describe('daily quota scripts', () => {
  it('reserves all or nothing, expires at the end of the UTC day, settles to usage', async () => {
    const key = keys.quota('q-user', utcDay());
    expect(await reserveQuota(redis, key, 60, 100)).toEqual({ reserved: true, used: 60 });
    expect(await reserveQuota(redis, key, 50, 100)).toEqual({ reserved: false, used: 60 });
    expect(await reserveQuota(redis, key, 40, 100)).toEqual({ reserved: true, used: 100 });
    const ttl = await redis.ttl(key);
    expect(Math.abs(ttl - (endOfUtcDay() - Math.floor(Date.now() / 1000)))).toBeLessThanOrEqual(2);
    expect(await settleQuota(redis, key, -45)).toBe(55);
    expect(await settleQuota(redis, key, -1000)).toBe(0);
    expect(await redis.ttl(key)).toBeGreaterThan(0);
  });

  it('does not refund into a counter that expired meanwhile (a new day)', async () => {
    const key = keys.quota('gone', utcDay());
    expect(await settleQuota(redis, key, -30)).toBe(0);
    expect(await redis.exists(key)).toBe(0);
  });
});

describe('token-bucket-take-1.lua / token-bucket-settle-1.lua (tokens per minute)', () => {
  it('of many concurrent takes, exactly those that fit a full bucket pass; a refusal takes nothing', async () => {
    const key = keys.tokensPerMinute({ user: 'tpm-burst' });
    // 10 000 a minute refills 1 token per 6 ms: 100 takes of 300 from a full bucket pass 33 times.
    const decisions = await Promise.all(
      Array.from({ length: 100 }, () => takeTokens(redis, key, 300, 10_000)),
    );
    const taken = decisions.filter((d) => d.taken);
    expect(taken).toHaveLength(33);
    const refused = decisions.filter((d) => !d.taken);
    for (const d of refused) {
      expect(d.remaining).toBeLessThan(300);
      expect(d.waitMs).toBeGreaterThan(0);
      expect(d.waitMs).toBeLessThanOrEqual(Math.ceil((300 / 10_000) * 60_000));
    }
  });

  it('settling gives back what a job did not use, never above the limit; an expired bucket is left alone', async () => {
    const key = keys.tokensPerMinute({ key: 'key_settle' });
    const took = await takeTokens(redis, key, 900, 1000, 600_000);
    expect(took).toMatchObject({ taken: true, remaining: 100 });
    expect((await takeTokens(redis, key, 500, 1000, 600_000)).taken).toBe(false);
    // The job used 150 of its 900: 750 come back.
    await settleHold(redis, { kind: 'bucket', key }, 150 - 900);
    const after = await takeTokens(redis, key, 500, 1000, 600_000);
    expect(after.taken).toBe(true);
    expect(after.remaining).toBeGreaterThanOrEqual(350);
    expect(after.remaining).toBeLessThan(360);
    await settleHold(redis, { kind: 'bucket', key }, -5000);
    expect(Number(await redis.hget(key, 'tokens'))).toBe(1000);
    await redis.del(key);
    await settleHold(redis, { kind: 'bucket', key }, -100);
    expect(await redis.exists(key)).toBe(0);
  });

  it('monthly keys: the month and its end in UTC', () => {
    const t = Date.UTC(2026, 11, 31, 23, 59, 59);
    expect(utcMonth(t)).toBe('202612');
    expect(endOfUtcMonth(t)).toBe(Date.UTC(2027, 0, 1) / 1000);
  });
});
