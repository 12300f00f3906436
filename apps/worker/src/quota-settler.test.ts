import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { freePort, type RedisServerHandle, spawnRedisServer } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createKeys, createRedis, endOfUtcDay, quitQuietly, utcDay, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerMetrics } from './metrics.ts';
import { settleQuotaEventually } from './quota-settler.ts';

/** The worker's log lines, parsed. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger({ service: 'worker', instance: 'settler-test', level: 'debug', destination });
  return { log, find: (msg: string) => lines.filter((l) => l.msg === msg) };
}

const retriesIn = async (metrics: WorkerMetrics) => {
  const m = /^llm_quota_settle_retries_total (\d+)$/m.exec(await metrics.registry.metrics());
  return Number(m?.[1]);
};

describe('quota settlement retried until Redis takes it', () => {
  const keys = createKeys(`test-${randomUUID()}`);
  let server: RedisServerHandle | undefined;
  const conns: Redis[] = [];
  const connect = (url: string) => {
    const c = createRedis(url, 'command', 'settler-test');
    c.on('error', () => {});
    conns.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of conns.splice(0)) await quitQuietly(c);
    await server?.stop();
    server = undefined;
  });

  it('a settlement issued while Redis is down lands once it is back', async () => {
    // Persistent: the reservation must survive the restart, as it would on a real Redis.
    server = await spawnRedisServer({ persist: true });
    const check = connect(server.url);
    const settler = connect(server.url);
    await Promise.all([waitReady(check), waitReady(settler)]);
    const key = keys.quota('user-1', utcDay());
    await check.set(key, 120, 'EXAT', endOfUtcDay());

    await server.stop();
    const metrics = new WorkerMetrics(['m'], 1);
    const { log, find } = captureLog();
    const outcome = settleQuotaEventually(key, -80, {
      redis: settler,
      log,
      metrics,
      firstDelayMs: 50,
      maxDelayMs: 200,
    });
    // It is failing and retrying while Redis is down…
    await expect.poll(() => retriesIn(metrics), { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    expect(find('quota_settle_failed_retrying')).toHaveLength(1);

    // …and lands once it is back.
    await server.restart();
    expect(await outcome).toBe('settled');
    await waitReady(check);
    expect(await check.get(key)).toBe('40');
    expect(await check.ttl(key)).toBeGreaterThan(0);
    const [landed] = find('quota_settled_after_retry');
    expect(landed).toMatchObject({ quota_key: key, delta: -80 });
    expect(Number(landed?.attempts)).toBeGreaterThanOrEqual(4);
    expect(find('quota_settle_gave_up')).toHaveLength(0);
  });

  it("gives up, with a log line, once the key's day is over", async () => {
    const nobody = connect(`redis://127.0.0.1:${await freePort()}`);
    const yesterday = utcDay(Date.now() - 86_400_000);
    const metrics = new WorkerMetrics(['m'], 1);
    const { log, find } = captureLog();
    const outcome = await settleQuotaEventually(keys.quota('user-2', yesterday), -10, {
      redis: nobody,
      log,
      metrics,
    });
    expect(outcome).toBe('day_over');
    expect(find('quota_settle_gave_up')).toMatchObject([{ reason: 'day_over', attempts: 1, delta: -10 }]);
    expect(await retriesIn(metrics)).toBe(0);
  });

  it('gives up when its connection is closed for good (worker shutdown)', async () => {
    const closed = connect(`redis://127.0.0.1:${await freePort()}`);
    closed.disconnect();
    const { log, find } = captureLog();
    const outcome = await settleQuotaEventually(keys.quota('user-3', utcDay()), -10, {
      redis: closed,
      log,
      metrics: new WorkerMetrics(['m'], 1),
    });
    expect(outcome).toBe('connection_closed');
    expect(find('quota_settle_gave_up')).toMatchObject([{ reason: 'connection_closed' }]);
  });
});
