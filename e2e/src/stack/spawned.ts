import { redisEnvFields } from '@llmgw/config';
import { freePort, type SpawnedService, spawnService } from '@llmgw/devkit';
import {
  createApiKeyAt,
  removeStackKeys,
  type StackApiKey,
  type StackKind,
  stackEnv,
  stackPrefix,
} from './common.ts';

export interface SpawnedStackOptions {
  /** The Redis every service uses (tests: `inject('redisUrl')`; the bench: bench/src/redis.ts). */
  redisUrl: string;
  /**
   * Instead of `redisUrl`, the variables of another connection form (REDIS_CLUSTER_NODES, …, see
   * packages/config redis-env.ts) for every service. The servers are the caller's: their keys are
   * not removed at close, and `createKey` is not available.
   */
  redisEnv?: Record<string, string>;
  /** Which prefix the stack gets (common.ts `stackPrefix`); default `test`. */
  kind?: StackKind;
  /**
   * Every service's environment, after REDIS_URL and KEY_PREFIX. LOG_LEVEL defaults to info:
   * readiness is read from each service's info lines.
   */
  env?: Record<string, string>;
  /**
   * The simulator's own variables (SIM_TTFT_MS, …): it runs as a process too, and the workers use
   * it. `false`: no simulator process (point LLM_BASE_URL elsewhere, e.g. at a simulator in this
   * process, whose stats and request log a test can read).
   */
  sim?: Record<string, string> | false;
  /** Each worker's own variables. */
  worker?: Record<string, string>;
  /** Workers started with the stack (default 1; 0 for a test that starts its own). */
  workers?: number;
  /** Each api's own variables. */
  api?: Record<string, string>;
  /** Apis started with the stack (default 1). */
  apis?: number;
  /** Flags for each node process itself (`--cpu-prof`, …). */
  nodeArgs?: string[];
}

export interface SpawnedApi {
  service: SpawnedService;
  url: string;
}

export interface SpawnedStack {
  prefix: string;
  redisUrl: string;
  /** What every service of the stack started with (REDIS_URL, KEY_PREFIX, LOG_LEVEL, SIM_PORT, `env`). */
  env: Record<string, string>;
  /** The simulator process and its URL (no `/v1`), unless `sim: false`. */
  sim: SpawnedService | undefined;
  simUrl: string | undefined;
  workers: SpawnedService[];
  apis: SpawnedService[];
  apiUrls: string[];
  /** Every process, in the order started. */
  services: SpawnedService[];
  /** One more worker (`name` default `worker<n>`); resolves once it registered its models. */
  startWorker(env?: Record<string, string>, name?: string): Promise<SpawnedService>;
  /** One more api on a free port (`name` default `api<port>`); resolves once it listens. */
  startApi(env?: Record<string, string>, name?: string): Promise<SpawnedApi>;
  /** A new API key under the stack's prefix (for an api in the default AUTH_MODE=api_key), by default for a new user. */
  createKey(tier?: string, userId?: string): Promise<StackApiKey>;
  /**
   * Stops every process still running with `signal` (SIGTERM: a graceful stop; SIGKILL: no
   * waiting), then deletes every key under the prefix. Idempotent.
   */
  close(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Every connection variable blank (the services read an empty one as unset): the processes inherit
 * this one's environment, and a REDIS_URL from there beside a `redisEnv` form is a mix they refuse.
 */
const NO_REDIS_FORM: Record<string, string> = Object.fromEntries(
  Object.keys(redisEnvFields).map((name) => [name, '']),
);

/** Processes started and not yet exited: {@link stopAllSpawned} stops them (an interrupted run). */
const live = new Set<SpawnedService>();

function track(service: SpawnedService): SpawnedService {
  live.add(service);
  void service.exited.then(() => live.delete(service));
  return service;
}

/** SIGTERM to every process any spawned stack of this process started and is still running. */
export async function stopAllSpawned(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop('SIGTERM')));
}

/** Why a start failed: the last lines of every process that already exited (a crash at startup). */
function exitedTails(services: SpawnedService[]): string[] {
  return services
    .filter((s) => s.child.exitCode !== null || s.child.signalCode !== null)
    .map(
      (s) =>
        `--- ${s.name} exited:\n${s.lines
          .slice(-15)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
    );
}

/**
 * The real processes, as deployed: simulator, worker(s), api(s), each its own node process (our
 * TypeScript through tsx, devkit `spawnService`), on loopback, under a prefix of their own. Resolves
 * once each logged that it is ready (`sim_listening`, `worker_started`, `api_listening`); should
 * one fail to, every process is killed, the prefix removed, and the error names what exited.
 * For the whole path inside the test process, see in-process.ts.
 */
export async function startSpawnedStack(opts: SpawnedStackOptions): Promise<SpawnedStack> {
  const { redisUrl } = opts;
  const prefix = stackPrefix(opts.kind ?? 'test');
  const env: Record<string, string> = {
    ...(opts.redisEnv
      ? { ...NO_REDIS_FORM, ...opts.redisEnv, KEY_PREFIX: prefix }
      : stackEnv(redisUrl, prefix)),
    LOG_LEVEL: 'info',
    ...opts.env,
  };
  const nodeArgs = opts.nodeArgs ?? [];
  const services: SpawnedService[] = [];
  const workers: SpawnedService[] = [];
  const apis: SpawnedService[] = [];
  const apiUrls: string[] = [];

  const spawn = (service: 'sim' | 'worker' | 'api', own: Record<string, string>, name: string) => {
    const s = track(spawnService(service, { ...env, ...own }, { name, nodeArgs }));
    services.push(s);
    return s;
  };

  let sim: SpawnedService | undefined;
  let simUrl: string | undefined;
  const ready: Promise<unknown>[] = [];
  if (opts.sim !== false) {
    // Every service gets SIM_PORT: the simulator listens there, and a worker without LLM_BASE_URL
    // uses the simulator on SIM_PORT (its default, as in `docker compose` and `pnpm start`).
    const simPort = await freePort();
    env.SIM_PORT = String(simPort);
    simUrl = `http://127.0.0.1:${simPort}`;
    sim = spawn('sim', { ...opts.sim }, 'sim');
    ready.push(sim.waitFor((l) => l.msg === 'sim_listening'));
  }

  const spawnWorker = (own: Record<string, string>, name = `worker${workers.length}`) => {
    const w = spawn('worker', { METRICS_PORT: '0', ...opts.worker, ...own }, name);
    workers.push(w);
    // Logged once the worker registered its models: the api admits from then on.
    return { service: w, ready: w.waitFor((l) => l.msg === 'worker_started') };
  };
  const spawnApi = async (own: Record<string, string>, name?: string) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const a = spawn(
      'api',
      { PORT: String(port), HOST: '127.0.0.1', ...opts.api, ...own },
      name ?? `api${port}`,
    );
    apis.push(a);
    apiUrls.push(url);
    return { api: { service: a, url }, ready: a.waitFor((l) => l.msg === 'api_listening') };
  };
  /** Waits for `ready`; on failure says which process exited, and why. */
  const startedOrExplain = async (what: Promise<unknown>[]) => {
    try {
      await Promise.all(what);
    } catch (err) {
      throw new Error([(err as Error).message, ...exitedTails(services)].join('\n'));
    }
  };

  let users = 0;
  let closing: Promise<void> | undefined;
  const close = (signal: NodeJS.Signals = 'SIGTERM') => {
    closing ??= (async () => {
      await Promise.all(services.map((s) => s.stop(signal)));
      if (!opts.redisEnv) await removeStackKeys(redisUrl, prefix);
    })();
    return closing;
  };

  for (let i = 0; i < (opts.workers ?? 1); i++) ready.push(spawnWorker({}).ready);
  for (let i = 0; i < (opts.apis ?? 1); i++) ready.push((await spawnApi({}, `api${i}`)).ready);
  try {
    await startedOrExplain(ready);
  } catch (err) {
    await close('SIGKILL');
    throw err;
  }

  return {
    prefix,
    redisUrl,
    env,
    sim,
    simUrl,
    workers,
    apis,
    apiUrls,
    services,
    async startWorker(own = {}, name) {
      const w = spawnWorker(own, name);
      await startedOrExplain([w.ready]);
      return w.service;
    },
    async startApi(own = {}, name) {
      const a = await spawnApi(own, name);
      await startedOrExplain([a.ready]);
      return a.api;
    },
    createKey: async (tier = 'enterprise', userId = `user-${users++}`) => {
      if (opts.redisEnv) throw new Error('createKey needs the stack on a redisUrl');
      return createApiKeyAt(redisUrl, prefix, userId, tier);
    },
    close,
  };
}
