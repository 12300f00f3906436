import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedis, quitQuietly, waitReady } from './connection.ts';
import { admitInflight, endInflight, renewInflight, startInflight } from './inflight.ts';
import { createKeys } from './keys.ts';

const redis = createRedis(inject('redisUrl'), 'command', 'inflight-test');
const keys = createKeys(`test-${randomUUID()}`);
beforeAll(() => waitReady(redis));
afterAll(async () => {
  const k = await redis.keys(`${keys.prefix}:*`);
  if (k.length) await redis.del(...k);
  await quitQuietly(redis);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('inflight-*.lua', () => {
  it('admits exactly max_waiting of many concurrent decisions; a refusal adds nothing', async () => {
    const decisions = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        admitInflight(redis, keys, 'burst', `j${i}`, { maxWaiting: 7 }, 60_000),
      ),
    );
    expect(decisions.filter((d) => d.admitted)).toHaveLength(7);
    // Each admitted job saw the ones before it: 0…6, once each (what its priority is built on).
    expect(
      decisions
        .filter((d) => d.admitted)
        .map((d) => d.waiting)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(await redis.zcard(keys.inflight('burst', 'waiting'))).toBe(7);
  });

  it('max_concurrent counts waiting + running; starting frees a waiting place, ending frees both', async () => {
    const u = 'mixed';
    const caps = { maxWaiting: 1, maxConcurrent: 2 };
    expect(await admitInflight(redis, keys, u, 'a', caps, 60_000)).toEqual({
      admitted: true,
      waiting: 0,
      running: 0,
    });
    expect((await admitInflight(redis, keys, u, 'b', caps, 60_000)).admitted).toBe(false); // 1 waiting
    await startInflight(redis, keys, u, 'a', 60_000);
    expect(await admitInflight(redis, keys, u, 'b', caps, 60_000)).toEqual({
      admitted: true,
      waiting: 0,
      running: 1,
    });
    await startInflight(redis, keys, u, 'b', 60_000);
    expect(await admitInflight(redis, keys, u, 'c', caps, 60_000)).toEqual({
      admitted: false,
      waiting: 0,
      running: 2,
    });
    await endInflight(redis, keys, u, 'a');
    expect((await admitInflight(redis, keys, u, 'c', caps, 60_000)).admitted).toBe(true);
    expect(await redis.zrange(keys.inflight(u, 'running'), '0', '-1')).toEqual(['b']);
    expect(await redis.zrange(keys.inflight(u, 'waiting'), '0', '-1')).toEqual(['c']);
  });

  it('entries of an api that stopped following them expire: a lease not renewed frees the place', async () => {
    const u = 'crashed';
    const caps = { maxConcurrent: 1 };
    expect((await admitInflight(redis, keys, u, 'w', caps, 100)).admitted).toBe(true);
    await sleep(150);
    expect(await admitInflight(redis, keys, u, 'x', caps, 60_000)).toEqual({
      admitted: true,
      waiting: 0,
      running: 0,
    });
    await startInflight(redis, keys, u, 'x', 100);
    expect(await redis.pttl(keys.inflight(u, 'running'))).toBeLessThanOrEqual(100);
    await sleep(150);
    expect(await admitInflight(redis, keys, u, 'y', caps, 60_000)).toEqual({
      admitted: true,
      waiting: 0,
      running: 0,
    });
    // The keys go too: nothing of a finished user lingers in Redis.
    expect(await redis.exists(keys.inflight(u, 'running'))).toBe(0);
  });

  it('renewing pushes a running lease out; an ended job is not brought back', async () => {
    const u = 'renewed';
    const running = keys.inflight(u, 'running');
    await admitInflight(redis, keys, u, 'r1', {}, 60_000);
    await admitInflight(redis, keys, u, 'r2', {}, 60_000);
    await startInflight(redis, keys, u, 'r1', 60_000);
    await startInflight(redis, keys, u, 'r2', 60_000);
    await endInflight(redis, keys, u, 'r2');
    const before = Number(await redis.zscore(running, 'r1'));
    await sleep(5);
    expect(await renewInflight(redis, keys, u, ['r1', 'r2'], 60_000)).toBe(1);
    expect(Number(await redis.zscore(running, 'r1'))).toBeGreaterThan(before);
    expect(await redis.zrange(running, '0', '-1')).toEqual(['r1']);
    expect(await redis.zcard(keys.inflight(u, 'waiting'))).toBe(0);
  });
});
