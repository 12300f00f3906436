import { keyPrefixOf, nonNegativeInt, port, redisEnvFields, redisTargetOf } from '@llmgw/config';
import { z } from 'zod';

const optionalCsv = z
  .string()
  .optional()
  .transform((v) =>
    v
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  )
  .transform((list) => (list === undefined || list.length === 0 ? undefined : list));

/**
 * What `pnpm start` itself reads. Everything else in the environment (LOG_LEVEL, TIERS_FILE, …)
 * goes to the children untouched, and each parses it with its own schema.
 */
export const StartEnvSchema = z
  .object({
    /**
     * REDIS_URL is used if it answers; otherwise a private redis-server is started (when on the
     * PATH). Sentinel (REDIS_SENTINELS) or TLS must answer: nothing is started for them.
     */
    ...redisEnvFields,
    /** 0: a free port picked at start. */
    PORT: port(8000),
    SIM_PORT: port(8001),
    /** Address of the api, the simulator and the worker's metrics: loopback unless set. */
    HOST: z.string().min(1).default('127.0.0.1'),
    SIM_HOST: z.string().min(1).optional(),
    METRICS_HOST: z.string().min(1).optional(),
    /** The worker's /metrics + /health port; unset or 0: a free port picked at start. */
    METRICS_PORT: nonNegativeInt(0),
    /** A prefix of the development stack's own, so it never mixes with a deployment on the same Redis. */
    KEY_PREFIX: keyPrefixOf('llmgw-dev'),
    LLM_PROVIDER: z.enum(['openai', 'anthropic']).default('openai'),
    /** A real backend instead of the simulator. */
    LLM_BASE_URL: z.url().optional(),
    LLM_API_KEY: z.string().optional(),
    LLM_HEALTH_URL: z.url().optional(),
    /** Default: what the backend's `GET /v1/models` lists. */
    WORKER_MODELS: optionalCsv,
    /** Default: the first served model. */
    DEFAULT_MODEL: z.string().min(1).optional(),
    AUTH_MODE: z.enum(['api_key', 'trusted_headers']).default('api_key'),
    /** The children's grace on stop; start.ts waits that long (and a little more) for them. */
    SHUTDOWN_GRACE_MS: nonNegativeInt(30_000),
    /** Where the development API key is kept between starts (relative to the working directory). */
    LLMGW_DEV_KEY_FILE: z.string().min(1).default('.llmgw-dev-key'),
    /**
     * Where a running stack says which Redis and key prefix it uses, for the keys CLI
     * (packages/config dev-state.ts; relative to the working directory).
     */
    LLMGW_DEV_STATE_FILE: z.string().min(1).default('.llmgw-dev-state.json'),
  })
  .transform((env, ctx) => ({ ...env, redis: redisTargetOf(env, ctx) }));
export type StartEnv = z.infer<typeof StartEnvSchema>;
