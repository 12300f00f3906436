/**
 * `pnpm start`: the whole stack on this machine, one command.
 *  - Redis: REDIS_URL if it answers, else a private redis-server from the PATH on a free port.
 *  - The simulator on SIM_PORT (default 8001), unless LLM_BASE_URL points at a real backend.
 *  - One api (PORT, default 8000) and one worker (metrics on a free port unless METRICS_PORT),
 *    all bound to HOST (default 127.0.0.1), under KEY_PREFIX (default `llmgw-dev`).
 *  - The models: WORKER_MODELS, else what the backend's `GET /v1/models` lists.
 *  - A development key (start/dev-key.ts), and an entry in the dev-state file saying which Redis
 *    and prefix this stack uses, for `pnpm keys` (packages/config dev-state.ts), removed on exit.
 * Ready when every process answers its health endpoint (whatever LOG_LEVEL hides). Logs of every
 * process, prefixed by its name, readable rather than JSON.
 *
 * Ctrl-C stops all and exits 0 once the children have drained (start/stack.ts, start/signals.ts).
 */
import { resolve } from 'node:path';
import { addDevStack, describeRedisTarget, loadEnvOrExit, redisEnvVars, removeDevStack } from '@llmgw/config';
import type { ServiceName } from '@llmgw/devkit';
import { chooseAddresses } from './start/addresses.ts';
import { printReady } from './start/banner.ts';
import { shown, stackDevKey } from './start/dev-key.ts';
import { StartEnvSchema } from './start/env.ts';
import { say } from './start/log.ts';
import { listModels } from './start/models.ts';
import { waitHealthy } from './start/readiness.ts';
import { chooseRedis } from './start/redis.ts';
import { stopOnSignals } from './start/signals.ts';
import { createStack } from './start/stack.ts';

// A closed terminal must not turn the orderly stop into a crash.
process.stdout.on('error', () => {});
const env = loadEnvOrExit(StartEnvSchema);
const stack = createStack(env.SHUTDOWN_GRACE_MS);
stopOnSignals(stack);

async function main(): Promise<void> {
  const useSim = env.LLM_BASE_URL === undefined;
  let models = env.WORKER_MODELS;
  // A real backend: ask it what it serves before starting anything.
  if (!useSim && models === undefined) {
    const listed = await listModels(env.LLM_BASE_URL!, env).catch((err: Error) => {
      throw new Error(`${err.message}; set WORKER_MODELS to the models the backend serves`);
    });
    models = listed.models;
    say(`serving ${models.join(', ')}: listed by ${listed.url} (set WORKER_MODELS to choose)`);
  }

  const at = await chooseAddresses(env, useSim);
  const redis = await chooseRedis(env, stack);
  const launch = (service: ServiceName, extra: Record<string, string | undefined>) =>
    stack.launch(service, { ...redis.env, KEY_PREFIX: env.KEY_PREFIX, ...extra });

  let backend: Record<string, string> = {};
  if (useSim) {
    const sim = launch('sim', { SIM_PORT: String(at.sim.port), SIM_HOST: at.sim.host });
    await waitHealthy(sim, `${at.sim.url}/health`);
    const simApi = `${at.sim.url}${env.LLM_PROVIDER === 'openai' ? '/v1' : ''}`;
    backend = { LLM_BASE_URL: simApi, LLM_HEALTH_URL: env.LLM_HEALTH_URL ?? `${at.sim.url}/health` };
    // SIM_MODEL may name other models than the worker's default: serve what the simulator does.
    if (models === undefined) {
      models = (await listModels(simApi, env)).models;
      say(`serving ${models.join(', ')} (the simulator's models)`);
    }
  }
  const servedModels = models!;
  const defaultModel = env.DEFAULT_MODEL ?? servedModels[0]!;
  const worker = launch('worker', {
    ...backend,
    WORKER_MODELS: servedModels.join(','),
    METRICS_PORT: String(at.metrics.port),
    METRICS_HOST: at.metrics.host,
  });
  const api = launch('api', { PORT: String(at.api.port), HOST: at.api.host, DEFAULT_MODEL: defaultModel });
  // Registered (its /health answers 200 only then) and listening: whatever LOG_LEVEL prints.
  await Promise.all([
    waitHealthy(worker, `${at.metrics.url}/health`),
    waitHealthy(api, `${at.api.url}/livez`),
  ]);

  const stateFile = resolve(env.LLMGW_DEV_STATE_FILE);
  const key =
    env.AUTH_MODE === 'trusted_headers'
      ? undefined
      : stackDevKey({
          redisEnv: redis.env,
          keyPrefix: env.KEY_PREFIX,
          file: resolve(env.LLMGW_DEV_KEY_FILE),
          stateFile,
          apiPort: at.api.port,
        });
  // For `pnpm keys` beside it: this stack's Redis and prefix, while it runs.
  addDevStack(stateFile, {
    pid: process.pid,
    started_at: Date.now(),
    api: at.api.url,
    redis: describeRedisTarget(redis.target),
    redis_env: { ...redisEnvVars(env), ...redis.env },
    key_prefix: env.KEY_PREFIX,
    ...(key && { key_file: key.file }),
  });
  process.once('exit', () => removeDevStack(stateFile, process.pid));
  printReady({ env, at, useSim, defaultModel, key: key && { key: key.key, file: shown(key.file) } });
}

main().catch((err: Error) => {
  if (!stack.stopping) void stack.fail(err.message);
});
