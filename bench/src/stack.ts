import { randomUUID } from 'node:crypto';
import {
  freePort,
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  type SpawnedService,
  spawnRedisServer,
  spawnService,
} from '@llmgw/devkit';

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
  services: SpawnedService[];
  close(): Promise<void>;
}

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
  const sim = spawnService('sim', { ...common, SIM_PORT: String(simPort), ...opts.sim }, { nodeArgs });
  services.push(sim);
  const ready: Promise<unknown>[] = [sim.waitFor((l) => l.msg === 'sim_listening')];
  for (let i = 0; i < (opts.workers ?? 1); i++) {
    const w = spawnService(
      'worker',
      {
        ...common,
        LOG_LEVEL: 'info',
        METRICS_PORT: '0',
        LLM_BASE_URL: `http://127.0.0.1:${simPort}/v1`,
        ...opts.worker,
      },
      { name: `worker${i}`, nodeArgs },
    );
    services.push(w);
    ready.push(w.waitFor((l) => l.msg === 'worker_started'));
  }
  const apiUrls: string[] = [];
  for (let i = 0; i < (opts.apis ?? 1); i++) {
    const port = await freePort();
    const a = spawnService(
      'api',
      { ...common, LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1', ...opts.api },
      { name: `api${i}`, nodeArgs },
    );
    services.push(a);
    apiUrls.push(`http://127.0.0.1:${port}`);
    ready.push(a.waitFor((l) => l.msg === 'api_listening'));
  }
  await Promise.all(ready);
  return {
    simUrl: `http://127.0.0.1:${simPort}`,
    apiUrls,
    redisUrl,
    services,
    async close() {
      await Promise.all(services.map((s) => s.stop('SIGTERM')));
    },
  };
}
