import { randomUUID } from 'node:crypto';
import { type ApiServer, parseApiEnv, startApiServer } from '@llmgw/api';
import { LogCapture, postSSE, type SSEOptions, type SSEResult } from '@llmgw/devkit';
import { createLogger, type Logger } from '@llmgw/observability';
import { createKeys, createRedis, type Keys, quitQuietly } from '@llmgw/redis';
import { type SimOptions, type Simulator, startSimulator } from '@llmgw/sim';
import { parseWorkerEnv, WorkerService, workerOptionsFromEnv } from '@llmgw/worker';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { createApiKey, removeStackKeys, stackEnv, stackPrefix } from './common.ts';

export interface StackOptions {
  sim?: Partial<SimOptions>;
  /** Extra api env (strings, as in process.env). */
  api?: Record<string, string>;
  /** Extra worker env; one entry per worker (default: one worker). */
  workers?: Record<string, string>[];
  /** Skip the simulator (e.g. LLM_BASE_URL pointed elsewhere). */
  noSim?: boolean;
  /** A Redis of the test's own (one it may stop); default the shared test Redis. */
  redisUrl?: string;
  /**
   * Redis settings of the test's own servers instead of a URL (REDIS_SENTINELS, a rediss://
   * REDIS_URL with REDIS_TLS_CA_FILE, …): every service gets them, and so does the stack's own
   * connection. Their keys are not removed at close: the servers are the test's.
   */
  redisEnv?: Record<string, string>;
  /** Tier of the API key the stack's helpers authenticate with (default enterprise: tests are not about limits). */
  tier?: string;
}

export interface Stack {
  apiUrl: string;
  api: ApiServer;
  sim: Simulator | undefined;
  workers: WorkerService[];
  prefix: string;
  redisUrl: string;
  /** A plain command connection for assertions on Redis state. */
  redis: Redis;
  keys: Keys;
  logs: LogCapture;
  log: Logger;
  startWorker(env?: Record<string, string>): Promise<WorkerService>;
  /** Another api replica on the same Redis prefix (same env, plus `env`). */
  startApi(env?: Record<string, string>): Promise<ApiServer>;
  /** An API key of `opts.tier`, and the headers that present it. */
  apiKey: string;
  authHeaders: Record<string, string>;
  /** POST a body to `path` (default /chat) as an SSE client, authenticated. */
  chat(body: unknown, opts?: SSEOptions, path?: string): Promise<SSEResult>;
  /** fetch() against the api, authenticated. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops the apis, then the workers, then the simulator; then deletes every key under the prefix. */
  close(): Promise<void>;
}

/**
 * The whole path in this process, on loopback: simulator, api and worker(s) against the shared
 * test Redis under a key prefix of their own (`test-<uuid>`), so parallel tests never meet.
 * Their logs go to one {@link LogCapture}. For real processes, see spawned.ts.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const redisUrl = opts.redisUrl ?? inject('redisUrl');
  const prefix = stackPrefix('test');
  const logs = new LogCapture();
  const log = createLogger({ service: 'api', instance: 'test', level: 'debug', destination: logs });
  const sim = opts.noSim ? undefined : await startSimulator({ port: 0, ...opts.sim });
  const baseEnv = opts.redisEnv ? { ...opts.redisEnv, KEY_PREFIX: prefix } : stackEnv(redisUrl, prefix);

  const workers: WorkerService[] = [];
  const startWorker = async (extra: Record<string, string> = {}) => {
    const env = parseWorkerEnv({
      ...baseEnv,
      ...(sim && { LLM_BASE_URL: `${sim.url}/v1` }),
      HEARTBEAT_MS: '500',
      METRICS_PORT: '0',
      ...extra,
    });
    const instanceId = `worker-${workers.length}-${randomUUID().slice(0, 6)}`;
    const workerLog = createLogger({
      service: 'worker',
      instance: instanceId,
      level: 'debug',
      destination: logs,
    });
    const w = await WorkerService.start(workerOptionsFromEnv(env, workerLog, instanceId));
    workers.push(w);
    return w;
  };
  for (const w of opts.workers ?? [{}]) await startWorker(w);

  const apis: ApiServer[] = [];
  const startApi = async (extra: Record<string, string> = {}) => {
    // The default RESUME_GRACE_MS: a client that leaves cancels its job at once unless its
    // request asked to be resumable; tests of resume ask.
    const env = parseApiEnv({
      ...baseEnv,
      PORT: '0',
      HOST: '127.0.0.1',
      ...opts.api,
      ...extra,
    });
    const server = await startApiServer(env, log, `api-${apis.length}-${randomUUID().slice(0, 6)}`);
    apis.push(server);
    return server;
  };
  const api = await startApi();
  const target = parseWorkerEnv(baseEnv).redis;
  const keys = createKeys(prefix, { cluster: target.mode === 'cluster' });
  const redis = createRedis(target, 'worker', 'test-assert');
  const { key: apiKey, headers: authHeaders } = await createApiKey(
    redis,
    keys,
    'test-user',
    opts.tier ?? 'enterprise',
  );

  let closing: Promise<void> | undefined;
  return {
    apiUrl: api.url,
    api,
    sim,
    workers,
    prefix,
    redisUrl,
    redis,
    keys,
    logs,
    log,
    startWorker,
    startApi,
    apiKey,
    authHeaders,
    chat: (body, o = {}, path = '/chat') =>
      postSSE(`${api.url}${path}`, body, { ...o, headers: { ...authHeaders, ...o.headers } }),
    fetch: (path, init = {}) =>
      fetch(`${api.url}${path}`, {
        ...init,
        headers: { ...authHeaders, ...(init.headers as Record<string, string>) },
      }),
    close() {
      closing ??= (async () => {
        await Promise.all(apis.map((a) => a.close()));
        await Promise.all(workers.map((w) => w.close(1000)));
        await sim?.close();
        await quitQuietly(redis);
        if (!opts.redisEnv) await removeStackKeys(redisUrl, prefix);
      })();
      return closing;
    },
  };
}
