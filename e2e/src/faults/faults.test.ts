import { postSSE, type RedisServerHandle, spawnRedisServer, until } from '@llmgw/devkit';
import { createKeys, createRedis, quitQuietly } from '@llmgw/redis';
import { type Simulator, startSimulator } from '@llmgw/sim';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';
import { directTokens, seedTokens } from '../support/direct.ts';

const MODEL = 'sim-llama-3-8b';
const ask = (content: string, max_tokens: number) => ({ messages: [{ role: 'user', content }], max_tokens });
const user = { 'x-user-id': 'fault-tester', 'x-user-tier': 'enterprise' };

/** Real api and worker processes (so a crash would show as an exit), the simulator in this process. */
class Procs {
  sim: Simulator | undefined;
  /** A Redis of the test's own, stopped last. */
  redis: RedisServerHandle | undefined;
  stack: SpawnedStack | undefined;

  async start(opts: {
    redisUrl?: string;
    sim?: Parameters<typeof startSimulator>[0];
    worker?: Record<string, string>;
  }) {
    this.sim = await startSimulator({ port: 0, ...opts.sim });
    this.stack = await startSpawnedStack({
      redisUrl: opts.redisUrl ?? inject('redisUrl'),
      sim: false,
      workers: 0,
      apis: 0,
      env: { AUTH_MODE: 'trusted_headers', METRICS_PORT: '0', LLM_BASE_URL: `${this.sim.url}/v1` },
    });
    return this;
  }

  get env(): Record<string, string> {
    return this.stack!.env;
  }

  worker(extra: Record<string, string> = {}, name?: string) {
    return this.stack!.startWorker(extra, name);
  }

  async api(extra: Record<string, string> = {}) {
    const { service, url } = await this.stack!.startApi(extra);
    return { proc: service, url };
  }

  async close() {
    try {
      await this.stack?.close('SIGKILL');
    } finally {
      await this.sim?.close();
      await this.redis?.stop();
    }
  }
}

describe('graceful shutdown', () => {
  let p: Procs;
  afterEach(() => p?.close());

  it('api SIGTERM: /ready 503 at once, new requests 503, the open stream finishes, exit 0', async () => {
    p = await new Procs().start({ sim: { ttftMs: 5, itlMs: 30 } });
    await p.worker();
    const { proc, url } = await p.api({ SHUTDOWN_GRACE_MS: '10000' });
    const body = ask('finish me', 30);
    const expected = await directTokens(p.sim!.url, MODEL, body);
    let signalled = false;
    const stream = postSSE(`${url}/chat`, body, {
      headers: user,
      onData: () => {
        if (!signalled) {
          signalled = true;
          proc.child.kill('SIGTERM');
        }
        return undefined;
      },
    });
    await proc.waitFor((l) => l.msg === 'shutdown_started');
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, reason: 'shutting_down' });
    const refused = await fetch(`${url}/chat`, {
      method: 'POST',
      headers: user,
      body: JSON.stringify(ask('new', 2)),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toBe('shutting_down');
    expect(seedTokens((await stream).data)).toEqual(expected);
    expect(await proc.exited).toBe(0);
  });

  it('api SIGTERM past the grace period: the stream ends with an error frame; nobody resumes it, so the backend sees the abort after RESUME_GRACE_MS', async () => {
    p = await new Procs().start({ sim: { ttftMs: 5, itlMs: 50 } });
    await p.worker();
    const { proc, url } = await p.api({ SHUTDOWN_GRACE_MS: '300', RESUME_GRACE_MS: '300' });
    const res = await postSSE(`${url}/chat`, ask('too long', 200), {
      headers: user,
      onData: (_d) => {
        if (proc.child.exitCode === null && !proc.child.killed) proc.child.kill('SIGTERM');
        return undefined;
      },
    });
    const last = JSON.parse(res.data[res.data.length - 1]!) as { error: { type: string } };
    expect(last.error.type).toBe('shutting_down');
    expect(await proc.exited).toBe(0);
    expect(await until(() => p.sim!.stats().aborted === 1)).toBe(true);
  });

  it('worker SIGTERM: a job that fits the grace finishes; one that does not ends with worker_shutdown; deregistered, exit 0', async () => {
    p = await new Procs().start({ sim: { ttftMs: 5, itlMs: 40 } });
    const w = await p.worker({ SHUTDOWN_GRACE_MS: '600', WORKER_CONCURRENCY: '2' });
    const { url } = await p.api();
    const short = postSSE(`${url}/chat`, ask('short', 5), { headers: user });
    let killed = false;
    const long = postSSE(`${url}/chat`, ask('long', 200), {
      headers: user,
      onData: () => {
        if (!killed) {
          killed = true;
          w.child.kill('SIGTERM');
        }
        return undefined;
      },
    });
    expect(seedTokens((await short).data)).toHaveLength(5);
    const res = await long;
    expect(JSON.parse(res.data[res.data.length - 1]!)).toMatchObject({ error: { type: 'worker_shutdown' } });
    expect(await w.exited).toBe(0);
    expect(w.lines.some((l) => l.msg === 'worker_stopped')).toBe(true);
    const redis = createRedis(p.env.REDIS_URL!, 'worker', 'assert');
    const keys = createKeys(p.env.KEY_PREFIX!);
    expect(await redis.smembers(keys.modelWorkers(MODEL))).toEqual([]);
    expect(await redis.keys(keys.worker('*'))).toEqual([]);
    await quitQuietly(redis);
  });
});

describe('faults', () => {
  let p: Procs;
  afterEach(() => p?.close());

  it('a worker SIGKILLed mid-stream: its client gets an error frame and the stream closes within 15 s', async () => {
    p = await new Procs().start({ sim: { ttftMs: 5, itlMs: 50 } });
    const w = await p.worker();
    const { url } = await p.api();
    let killedAt = 0;
    const res = await postSSE(`${url}/chat`, ask('doomed', 400), {
      headers: user,
      onData: () => {
        if (!killedAt) {
          killedAt = performance.now();
          w.child.kill('SIGKILL');
        }
        return undefined;
      },
    });
    const last = JSON.parse(res.data[res.data.length - 1]!) as { error: { type: string } };
    expect(last.error.type).toBe('worker_lost');
    expect(res.endedAt - killedAt).toBeLessThan(15_000);
  }, 30_000);

  it('a stream declared lost is cancelled: the stalled job is not re-run on another worker', async () => {
    p = await new Procs().start({ sim: { ttftMs: 5, itlMs: 50 } });
    const fast = { JOB_LOCK_MS: '3000', HEARTBEAT_MS: '300' };
    const doomed = await p.worker(fast, 'doomed');
    const { url } = await p.api({ JOB_SILENCE_TIMEOUT_MS: '1000' });
    const survivor = await p.worker(fast, 'survivor');
    await survivor.child.kill('SIGSTOP'); // so the first job surely lands on the doomed worker
    let killed = false;
    const res = await postSSE(`${url}/chat`, ask('declared lost', 400), {
      headers: user,
      onData: () => {
        if (!killed) {
          killed = true;
          doomed.child.kill('SIGKILL');
          survivor.child.kill('SIGCONT');
        }
        return undefined;
      },
    });
    expect(JSON.parse(res.data.at(-1)!)).toMatchObject({ error: { type: 'worker_lost' } });
    // BullMQ hands the stalled job to the survivor once the lock expires; it must refuse it.
    expect(
      await until(() => survivor.lines.some((l) => l.msg === 'job_cancelled_before_start'), 15_000),
    ).toBe(true);
    const ran = p.sim!.requests().filter((r) => JSON.stringify(r.body).includes('declared lost'));
    expect(ran).toHaveLength(1);
  }, 40_000);

  it('a worker killed before its first token: the request completes on another worker, no text duplicated', async () => {
    p = await new Procs().start({ sim: { ttftMs: 1500, itlMs: 5 } });
    const fast = { JOB_LOCK_MS: '2000', HEARTBEAT_MS: '300' };
    const first = await p.worker(fast, 'first');
    const { url, proc: api } = await p.api();
    const body = ask('survive a crash', 12);
    const expected = await directTokens(p.sim!.url, MODEL, body);
    const pending = postSSE(`${url}/chat`, body, { headers: user });
    await first.waitFor((l) => l.msg === 'job_started');
    first.child.kill('SIGKILL');
    await p.worker(fast, 'second');
    const res = await pending;
    expect(seedTokens(res.data)).toEqual(expected);
    expect(api.lines.some((l) => l.msg === 'job_silent')).toBe(false);
  }, 40_000);

  it('Redis stopped for 5 s: 503s quickly, /health unhealthy, nothing crashes, service resumes by itself', async () => {
    const redis = await spawnRedisServer();
    p = await new Procs().start({ redisUrl: redis.url, sim: { ttftMs: 2, itlMs: 2 } });
    p.redis = redis;
    const w = await p.worker();
    const { url, proc: api } = await p.api();
    expect((await postSSE(`${url}/chat`, ask('before', 3), { headers: user })).status).toBe(200);

    await redis.kill();
    const started = performance.now();
    const during = await postSSE(`${url}/chat`, ask('during', 3), { headers: user });
    expect(during.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(2000);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { status: string }).status).toBe('unhealthy');
    expect((await fetch(`${url}/ready`)).status).toBe(503);
    await new Promise((r) => setTimeout(r, 5000));
    expect(api.child.exitCode).toBeNull();
    expect(w.child.exitCode).toBeNull();

    await redis.restart();
    const back = await until(async () => {
      const r = await postSSE(`${url}/chat`, ask('after', 3), { headers: user });
      return r.status === 200 && r.data[r.data.length - 1] === '[DONE]';
    }, 20_000);
    expect(back).toBe(true);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  }, 45_000);
});

/**
 * How each backend failure reaches the client once nothing retries it (failover.test.ts covers
 * the retries and the breaker): one attempt per job, a breaker that never opens.
 */
describe('backend faults (simulator fault injection)', () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());
  const noFailover = { api: { BACKEND_MAX_ATTEMPTS: '1' }, worker: { BREAKER_FAILURES: '1000' } };

  it.each([
    ['server_error', 'backend_error', 502],
    ['rate_limit', 'backend_rate_limited', 502],
    ['bad_request', 'backend_bad_request', 502],
    ['drop', 'backend_error', 502],
  ] as const)(
    '%s → error frame %s / status %i, error metric counted, worker slot freed',
    async (fault, type, status) => {
      stack = await startStack({
        sim: { ttftMs: 2, itlMs: 2, failureRate: 1, failureTypes: [fault] },
        api: noFailover.api,
        workers: [noFailover.worker],
      });
      const streamed = await stack.chat(ask('fail me', 10));
      const last = JSON.parse(streamed.data[streamed.data.length - 1]!) as { error: { type: string } };
      // A connection cut mid-stream surfaces from the SDK as either a generic or a connection error.
      if (fault === 'drop') expect(['backend_error', 'backend_unavailable']).toContain(last.error.type);
      else expect(last.error.type).toBe(type);
      const plain = await stack.fetch('/chat', {
        method: 'POST',
        body: JSON.stringify({ ...ask('fail', 4), stream: false }),
      });
      expect(plain.status).toBe(status);
      const metrics = await (await stack.fetch('/metrics')).text();
      expect(metrics).toMatch(
        new RegExp(`llm_errors_total\\{model="${MODEL}",error_type="${last.error.type}"\\} [1-9]`),
      );
      expect(await until(() => stack!.workers[0]!.metrics.running === 0)).toBe(true);
    },
  );

  it('a backend that never answers → backend_timeout after LLM_TIMEOUT_MS, slot freed', async () => {
    stack = await startStack({
      sim: { failureRate: 1, failureTypes: ['timeout'] },
      api: noFailover.api,
      workers: [{ LLM_TIMEOUT_MS: '500', ...noFailover.worker }],
    });
    const res = await stack.fetch('/chat', {
      method: 'POST',
      body: JSON.stringify({ ...ask('hello?', 4), stream: false }),
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: string }).error).toBe('backend_timeout');
    expect(stack.workers[0]!.metrics.running).toBe(0);
  });
});
