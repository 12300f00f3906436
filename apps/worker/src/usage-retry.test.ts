import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { freePort, type RedisServerHandle, spawnRedisServer } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import {
  createKeys,
  createRedis,
  quitQuietly,
  readLedger,
  recordUsageEventually,
  type UsageCount,
  utcDay,
  waitReady,
} from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';

/** The log lines, parsed. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger({ service: 'worker', instance: 'usage-test', level: 'debug', destination });
  return { log, find: (msg: string) => lines.filter((l) => l.msg === msg) };
}

/** What the processor does at a job's end (processor.ts `count`), against a Redis that goes away. */
describe('usage counts retried until Redis takes them, counted once', () => {
  const keys = createKeys(`test-${randomUUID()}`);
  let server: RedisServerHandle | undefined;
  const conns: Redis[] = [];
  const connect = (url: string) => {
    const c = createRedis(url, 'command', 'usage-retry-test');
    c.on('error', () => {});
    conns.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of conns.splice(0)) await quitQuietly(c);
    await server?.stop();
    server = undefined;
  });
  const count = (): UsageCount => ({
    jobId: randomUUID(),
    userId: 'alice',
    keyId: 'key_alice',
    model: 'm',
    outcome: 'cancelled',
    usage: { promptTokens: 7, completionTokens: 3 },
    endedAt: Date.now(),
  });

  it('a count made while Redis is down lands once it is back; trying it again changes nothing', async () => {
    server = await spawnRedisServer({ persist: true });
    const check = connect(server.url);
    const recorder = connect(server.url);
    await Promise.all([waitReady(check), waitReady(recorder)]);

    await server.stop();
    const { log, find } = captureLog();
    let retries = 0;
    const job = count();
    const outcome = recordUsageEventually(recorder, keys, job, {
      retentionDays: 400,
      log,
      onRetry: () => retries++,
      firstDelayMs: 50,
      maxDelayMs: 200,
    });
    await expect.poll(() => retries, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    expect(find('usage_record_failed_retrying')).toHaveLength(1);

    await server.restart();
    expect(await outcome).toBe('counted');
    expect(find('usage_recorded_after_retry')[0]).toMatchObject({ job_id: job.jobId });
    // The at-least-once retry's worst case: a try applied whose reply was lost, tried again.
    expect(await recordUsageEventually(recorder, keys, job, { retentionDays: 400, log })).toBe(
      'counted_before',
    );
    await waitReady(check);
    expect(await readLedger(check, keys, ['alice'], [utcDay()])).toEqual([
      expect.objectContaining({
        keyId: 'key_alice',
        outcome: 'cancelled',
        promptTokens: 7,
        completionTokens: 3,
        jobs: 1,
      }),
    ]);
  });

  it('gives up, logging the count for the operator, when its connection is closed for good (shutdown)', async () => {
    const closed = connect(`redis://127.0.0.1:${await freePort()}`);
    closed.disconnect();
    const { log, find } = captureLog();
    const job = count();
    expect(await recordUsageEventually(closed, keys, job, { retentionDays: 400, log })).toBe(
      'connection_closed',
    );
    expect(find('usage_record_gave_up')[0]).toMatchObject({
      job_id: job.jobId,
      user_id: 'alice',
      key_id: 'key_alice',
      prompt_tokens: 7,
      completion_tokens: 3,
      outcome: 'cancelled',
    });
  });
});
