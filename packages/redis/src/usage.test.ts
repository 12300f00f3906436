import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedis, quitQuietly, waitReady } from './connection.ts';
import { createKeys } from './keys.ts';
import { endOfUtcDay, utcDay } from './limits.ts';
import {
  readLedger,
  recordUsage,
  USAGE_COUNTED_TTL_S,
  type UsageCount,
  usageOutcome,
  usersWithUsage,
} from './usage.ts';

const redis = createRedis(inject('redisUrl'), 'command', 'usage-test');
const keys = createKeys(`test-${randomUUID()}`);
beforeAll(() => waitReady(redis));
afterAll(async () => {
  const k = await redis.keys(`${keys.prefix}:*`);
  if (k.length) await redis.del(...k);
  await quitQuietly(redis);
});

const DAY_MS = 86_400_000;
const now = Date.now();
const count = (over: Partial<UsageCount> = {}): UsageCount => ({
  jobId: randomUUID(),
  userId: 'alice',
  keyId: 'key_0123456789ab',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  outcome: 'completed',
  usage: { promptTokens: 20, completionTokens: 100 },
  endedAt: now,
  ...over,
});

describe('usage-record-2.lua', () => {
  it('counts a job once, however many times and however concurrently its end is recorded', async () => {
    const job = count({ userId: 'once' });
    // A retry whose first try Redis applied (its reply lost), a stalled re-run, a second worker:
    // all the same job id.
    const results = await Promise.all(Array.from({ length: 50 }, () => recordUsage(redis, keys, job, 400)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await recordUsage(redis, keys, { ...job, outcome: 'failed' }, 400)).toBe(false);
    expect(await readLedger(redis, keys, ['once'], [utcDay(now)])).toEqual([
      {
        day: utcDay(now),
        userId: 'once',
        keyId: 'key_0123456789ab',
        model: 'meta-llama/Llama-3.1-8B-Instruct',
        outcome: 'completed',
        promptTokens: 20,
        completionTokens: 100,
        jobs: 1,
      },
    ]);
    expect(await redis.ttl(keys.usageCounted('once', job.jobId))).toBeGreaterThan(USAGE_COUNTED_TTL_S - 60);
  });

  it('adds jobs up per key × model × outcome and UTC day; a job with no key is the user’s alone', async () => {
    const user = 'adder';
    const yesterday = now - DAY_MS;
    await Promise.all([
      recordUsage(redis, keys, count({ userId: user }), 400),
      recordUsage(redis, keys, count({ userId: user, usage: { promptTokens: 5, completionTokens: 7 } }), 400),
      recordUsage(redis, keys, count({ userId: user, outcome: 'cancelled' }), 400),
      recordUsage(redis, keys, count({ userId: user, keyId: 'key_other', model: 'a|b' }), 400),
      recordUsage(redis, keys, count({ userId: user, keyId: undefined }), 400),
      recordUsage(redis, keys, count({ userId: user, endedAt: yesterday }), 400),
      // Never ran: counted as a job, with no tokens.
      recordUsage(
        redis,
        keys,
        count({ userId: user, outcome: 'expired', usage: { promptTokens: 0, completionTokens: 0 } }),
        400,
      ),
    ]);
    const entries = await readLedger(redis, keys, [user, 'nobody'], [utcDay(yesterday), utcDay(now)]);
    const row = (e: (typeof entries)[number]) =>
      `${e.day === utcDay(now) ? 'today' : 'yesterday'} ${e.keyId} ${e.model} ${e.outcome} ${e.promptTokens} ${e.completionTokens} ${e.jobs}`;
    expect(entries.map(row).sort()).toEqual(
      [
        'today key_0123456789ab meta-llama/Llama-3.1-8B-Instruct completed 25 107 2',
        'today key_0123456789ab meta-llama/Llama-3.1-8B-Instruct cancelled 20 100 1',
        'today key_0123456789ab meta-llama/Llama-3.1-8B-Instruct expired 0 0 1',
        'today key_other a|b completed 20 100 1',
        'today null meta-llama/Llama-3.1-8B-Instruct completed 20 100 1',
        'yesterday key_0123456789ab meta-llama/Llama-3.1-8B-Instruct completed 20 100 1',
      ].sort(),
    );
  });

  it('keeps a day for USAGE_RETENTION_DAYS after its end; the users index forgets who had none since', async () => {
    await recordUsage(redis, keys, count({ userId: 'kept' }), 30);
    const ttl = await redis.ttl(keys.usage('kept', utcDay(now)));
    const expected = endOfUtcDay(now) + 30 * 86_400 - Math.floor(Date.now() / 1000);
    expect(Math.abs(ttl - expected)).toBeLessThanOrEqual(2);

    // A user whose last usage is older than the retention leaves the index at the next count.
    await recordUsage(redis, keys, count({ userId: 'old', endedAt: now - 40 * DAY_MS }), 400);
    expect(await usersWithUsage(redis, keys, now - 45 * DAY_MS)).toContain('old');
    expect(await usersWithUsage(redis, keys, now - DAY_MS)).not.toContain('old');
    await recordUsage(redis, keys, count({ userId: 'recent' }), 30);
    const all = await usersWithUsage(redis, keys, 0);
    expect(all).toContain('recent');
    expect(all).not.toContain('old');
    // An older day counted late never moves a user's last day back.
    await recordUsage(redis, keys, count({ userId: 'recent', endedAt: now - 3 * DAY_MS }), 30);
    expect(await usersWithUsage(redis, keys, now)).toContain('recent');
  });

  it('on a Cluster, a job’s marker and the day it guards are in the user’s slot; the users index in {P}', () => {
    const cluster = createKeys('llmgw', { cluster: true });
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    expect(tag(cluster.usage('alice', '20261203'))).toBe('alice');
    expect(tag(cluster.usageCounted('alice', 'job-1'))).toBe('alice');
    expect(tag(cluster.quota('alice', '20261203'))).toBe('alice');
    expect(tag(cluster.usageUsers)).toBe('llmgw');
  });

  it('outcomes follow the job status: cancelled, expired (queue_timeout), failed for the rest', () => {
    expect(usageOutcome(undefined)).toBe('completed');
    expect(usageOutcome('cancelled')).toBe('cancelled');
    expect(usageOutcome('queue_timeout')).toBe('expired');
    expect(usageOutcome('worker_shutdown')).toBe('failed');
    expect(usageOutcome('backend_unavailable')).toBe('failed');
  });
});

describe('memory per key-day (docs/operations.md, "Usage ledger")', () => {
  // A prefix about as long as the default `llmgw`, not the 41 characters of `test-<uuid>`: key
  // names are part of what is measured.
  const short = createKeys(`u${randomUUID().slice(0, 8)}`);
  afterAll(async () => {
    const k = await redis.keys(`${short.prefix}:*`);
    if (k.length) await redis.del(...k);
  });

  it('one key, one model, one day: about 200 bytes; a job marker about 120 for 24 h', async () => {
    const keys = short;
    const bytes = async (key: string) => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    const usage = { promptTokens: 123_456, completionTokens: 654_321 };
    // A typical key-day: many jobs of one model, every one completed.
    for (let i = 0; i < 20; i++) await recordUsage(redis, keys, count({ userId: 'mem1', usage }), 400);
    const oneOutcome = await bytes(keys.usage('mem1', utcDay(now)));
    // The same key-day with all four outcomes.
    for (const outcome of ['completed', 'cancelled', 'expired', 'failed'] as const) {
      await recordUsage(redis, keys, count({ userId: 'mem4', outcome, usage }), 400);
    }
    const fourOutcomes = await bytes(keys.usage('mem4', utcDay(now)));
    // A second key of the same user that day: what one more key-day adds to the user's hash.
    await recordUsage(redis, keys, count({ userId: 'mem1', keyId: 'key_ba9876543210', usage }), 400);
    const twoKeys = await bytes(keys.usage('mem1', utcDay(now)));
    const job = count({ userId: 'mem1' });
    await recordUsage(redis, keys, job, 400);
    const marker = await bytes(keys.usageCounted('mem1', job.jobId));
    const encoding = await redis.object('ENCODING', keys.usage('mem4', utcDay(now)));
    console.log(
      `usage ledger memory (Redis ${(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]}, ` +
        `encoding ${encoding}): key-day, one model, one outcome ${oneOutcome} B; four outcomes ` +
        `${fourOutcomes} B; a second key that day +${twoKeys - oneOutcome} B; job marker ${marker} B`,
    );
    expect(encoding).toBe('listpack');
    expect(oneOutcome).toBeLessThanOrEqual(220);
    expect(fourOutcomes).toBeLessThanOrEqual(450);
    expect(twoKeys - oneOutcome).toBeLessThanOrEqual(100);
    expect(marker).toBeLessThanOrEqual(130);
  });
});
