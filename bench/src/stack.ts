import { randomUUID } from 'node:crypto';
import {
  freePort,
  postSSE,
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  type SpawnedService,
  spawnRedisServer,
  spawnService,
} from '@llmgw/devkit';
// Not a dependency of the root package: imported by path (see scenarios/ratelimit.ts).
import { createRedis, quitQuietly, waitReady } from '../../packages/redis/src/index.ts';

export interface BenchStackOptions {
  sim: Record<string, string>;
  worker?: Record<string, string>;
  api?: Record<string, string>;
  workers?: number;
  apis?: number;
}

export interface BenchStack {
  simUrl: string;
  apiUrls: string[];
  redisUrl: string;
  sim: SpawnedService;
  workers: SpawnedService[];
  apis: SpawnedService[];
  services: SpawnedService[];
  close(): Promise<void>;
}

/**
 * The api's auth as the benchmark runs it: `trusted_headers` (no key store lookup), with a `bench`
 * tier whose limits are never reached, so the rate limiter and the quota still run on the measured
 * path (one Lua decision and one reservation per request) without ever refusing.
 */
export const BENCH_TIER = 'bench';
export const BENCH_API_ENV: Record<string, string> = {
  AUTH_MODE: 'trusted_headers',
  // The default (24) refuses with 503 whenever a burst outruns the worker's job fetching, even
  // with every backend slot free; the benchmark measures that wait instead of refusing it.
  QUEUE_MAX_WAITING: '100000',
  TIERS_JSON: JSON.stringify({
    free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
    [BENCH_TIER]: { requests_per_min: 1_000_000_000, tokens_per_day: 1_000_000_000, priority: 1 },
  }),
};

/** Headers of request `i` to the gateway: one of 100 users, all on the bench tier. */
export const benchHeaders = (i: number): Record<string, string> => ({
  'x-user-id': `bench-user-${i % 100}`,
  'x-user-tier': BENCH_TIER,
});

/** `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` profiles every process of the run. */
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

let sharedRedis: { url: string; handle?: RedisServerHandle } | undefined;

/** A reachable Redis (REDIS_URL, else 127.0.0.1:6379), or a redis-server spawned for this run. */
export async function benchRedis(): Promise<string> {
  if (sharedRedis) return sharedRedis.url;
  const candidate = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await redisReachable(candidate)) sharedRedis = { url: candidate };
  else if (redisServerAvailable()) {
    const handle = await spawnRedisServer();
    sharedRedis = { url: handle.url, handle };
  } else throw new Error('no Redis reachable and no redis-server on the PATH');
  return sharedRedis.url;
}

export async function stopBenchRedis(): Promise<void> {
  await sharedRedis?.handle?.stop();
  sharedRedis = undefined;
}

/** The real processes, as deployed: simulator, worker(s), api(s), each its own node process. */
export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const redisUrl = await benchRedis();
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const simPort = await freePort();
  const services: SpawnedService[] = [];
  const common = { REDIS_URL: redisUrl, KEY_PREFIX: prefix, LOG_LEVEL: 'warn' };
  // The simulator honours LOG_LEVEL too: `sim_listening` is an info line.
  const sim = track(
    spawnService(
      'sim',
      { ...common, LOG_LEVEL: 'info', SIM_PORT: String(simPort), ...opts.sim },
      { nodeArgs },
    ),
  );
  services.push(sim);
  const ready: Promise<unknown>[] = [sim.waitFor((l) => l.msg === 'sim_listening')];
  const workers: SpawnedService[] = [];
  const apis: SpawnedService[] = [];
  for (let i = 0; i < (opts.workers ?? 1); i++) {
    const w = track(
      spawnService(
        'worker',
        {
          ...common,
          LOG_LEVEL: 'info',
          METRICS_PORT: '0',
          LLM_BASE_URL: `http://127.0.0.1:${simPort}/v1`,
          ...opts.worker,
        },
        { name: `worker${i}`, nodeArgs },
      ),
    );
    services.push(w);
    workers.push(w);
    // Logged once the worker registered its models: the api admits from then on.
    ready.push(w.waitFor((l) => l.msg === 'worker_started'));
  }
  const apiUrls: string[] = [];
  for (let i = 0; i < (opts.apis ?? 1); i++) {
    const port = await freePort();
    const a = track(
      spawnService(
        'api',
        {
          ...common,
          LOG_LEVEL: 'info',
          PORT: String(port),
          HOST: '127.0.0.1',
          ...BENCH_API_ENV,
          ...opts.api,
        },
        { name: `api${i}`, nodeArgs },
      ),
    );
    services.push(a);
    apis.push(a);
    apiUrls.push(`http://127.0.0.1:${port}`);
    ready.push(a.waitFor((l) => l.msg === 'api_listening'));
  }
  if (nodeArgs.length > 0) {
    // Profiles are named by pid (CPU.<date>.<time>.<pid>.…): say which process is which.
    console.error(
      `[bench] node ${nodeArgs.join(' ')}: ${services.map((s) => `${s.name} pid ${s.child.pid}`).join(', ')}`,
    );
  }
  try {
    await Promise.all(ready);
    for (const url of apiUrls) await prime(url);
  } catch (err) {
    // Say why: the last lines of every process that already exited (a crash at startup).
    const exited = services.filter((s) => s.child.exitCode !== null || s.child.signalCode !== null);
    const tails = exited.map(
      (s) =>
        `--- ${s.name} exited:\n${s.lines
          .slice(-15)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
    );
    await Promise.all(services.map((s) => s.stop('SIGKILL')));
    await deleteKeys(redisUrl, prefix);
    throw new Error([(err as Error).message, ...tails].join('\n'));
  }
  return {
    simUrl: `http://127.0.0.1:${simPort}`,
    apiUrls,
    redisUrl,
    sim,
    workers,
    apis,
    services,
    async close() {
      await Promise.all(services.map((s) => s.stop('SIGTERM')));
      await deleteKeys(redisUrl, prefix);
    },
  };
}

/**
 * Removes a run's keys (its BullMQ queue with thousands of finished jobs, registrations, limits)
 * from what may be a shared Redis. Best effort.
 */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = createRedis(url, 'command', 'bench-cleanup');
  redis.on('error', () => {});
  try {
    await waitReady(redis, 2000);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } catch {
    // A benchmark's leftovers are not worth failing it for.
  } finally {
    await quitQuietly(redis);
  }
}

/** Processes started and not yet exited: an interrupted run stops them (no orphans). */
const live = new Set<SpawnedService>();

function track(service: SpawnedService): SpawnedService {
  live.add(service);
  service.exited.then(() => live.delete(service));
  return service;
}

export async function closeAllStacks(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop('SIGTERM')));
}

/**
 * One request alone through each api before any load. Besides warming up, it works around a
 * crash: packages/redis `withScripts` defines the Lua commands on a connection at their first
 * use, and on an auto-pipelined connection an auto-pipeline opened earlier in the same event-loop
 * turn lacks them ("pipeline[functionName] is not a function"; ioredis then throws "results[i] is
 * not iterable" outside any promise and the worker process exits). Under concurrent load the
 * worker's first quota settlements hit exactly that; one job completing alone defines them first.
 */
async function prime(apiUrl: string): Promise<void> {
  const res = await postSSE(
    `${apiUrl}/chat`,
    { messages: [{ role: 'user', content: 'prime' }], max_tokens: 1 },
    { headers: benchHeaders(0), timeoutMs: 20_000 },
  );
  if (res.status !== 200 || res.data.at(-1) !== '[DONE]') {
    throw new Error(`priming request failed: status ${res.status}, ${res.data.at(-1) ?? res.body}`);
  }
}

/** The pids of a stack's processes by name (sim, worker0…, api0…), for CPU and memory probes. */
export function processPids(stack: BenchStack): Record<string, number | undefined> {
  return Object.fromEntries(stack.services.map((s) => [s.name, s.child.pid]));
}
