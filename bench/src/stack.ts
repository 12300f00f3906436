/**
 * The benchmark's stack: e2e's spawned stack (`@llmgw/e2e/spawned`, the same builder the
 * cross-process tests use) with the bench's settings — its Redis, its auth and tier, profiling
 * flags, and one priming request per api.
 */
import {
  postSSE,
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  type SpawnedService,
  spawnRedisServer,
} from '@llmgw/devkit';
import { type SpawnedStack, startSpawnedStack } from '@llmgw/e2e/spawned';
import { openAITarget, type Target } from './load.ts';

export interface BenchStackOptions {
  sim: Record<string, string>;
  worker?: Record<string, string>;
  api?: Record<string, string>;
  workers?: number;
  apis?: number;
  /** Another Redis than the bench's (a server or Cluster of the scenario's own): its variables. */
  redisEnv?: Record<string, string>;
}

/** A spawned stack that always has its simulator process. */
export interface BenchStack extends SpawnedStack {
  sim: SpawnedService;
  simUrl: string;
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

/**
 * The bench's Redis when it found one running (REDIS_URL or 127.0.0.1:6379) instead of spawning
 * its own: what it measures of that Redis (INFO cpu) then counts every other client's commands
 * too. Undefined when the bench spawned it (or has none yet).
 */
export const sharedBenchRedis = (): string | undefined =>
  sharedRedis && !sharedRedis.handle ? sharedRedis.url : undefined;

export async function stopBenchRedis(): Promise<void> {
  await sharedRedis?.handle?.stop();
  sharedRedis = undefined;
}

/** The real processes, as deployed: simulator, worker(s), api(s), each its own node process. */
export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const stack = await startSpawnedStack({
    ...(opts.redisEnv ? { redisUrl: '', redisEnv: opts.redisEnv } : { redisUrl: await benchRedis() }),
    kind: 'bench',
    sim: opts.sim,
    worker: opts.worker,
    workers: opts.workers,
    api: { ...BENCH_API_ENV, ...opts.api },
    apis: opts.apis,
    nodeArgs,
  });
  if (nodeArgs.length > 0) {
    // Profiles are named by pid (CPU.<date>.<time>.<pid>.…): say which process is which.
    console.error(
      `[bench] node ${nodeArgs.join(' ')}: ${stack.services.map((s) => `${s.name} pid ${s.child.pid}`).join(', ')}`,
    );
  }
  try {
    for (const url of stack.apiUrls) await prime(url);
  } catch (err) {
    await stack.close('SIGKILL').catch(() => {});
    throw err;
  }
  return {
    ...stack,
    sim: stack.sim!,
    simUrl: stack.simUrl!,
    // A benchmark's leftovers in Redis are not worth failing it for: the cleanup is best effort.
    close: (signal) => stack.close(signal).catch(() => {}),
  };
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

/**
 * Streams of `maxTokens` tokens through an api's `/v1/chat/completions`, request `i` saying
 * `<tag> i`, as one of the bench's users ({@link benchHeaders}).
 */
export const gatewayV1Target = (apiUrl: string, tag: string, maxTokens: number): Target =>
  openAITarget(
    `${apiUrl}/v1/chat/completions`,
    (i) => ({ messages: [{ role: 'user', content: `${tag} ${i}` }], max_tokens: maxTokens, stream: true }),
    benchHeaders,
  );

/** The pids of a stack's processes by name (sim, worker0…, api0…), for CPU and memory probes. */
export function processPids(stack: SpawnedStack): Record<string, number | undefined> {
  return Object.fromEntries(stack.services.map((s) => [s.name, s.child.pid]));
}
