import {
  bool,
  csv,
  DEFAULT_MODEL,
  keyPrefix,
  logLevel,
  nonNegativeInt,
  otelEnvFields,
  parseEnv,
  port,
  positiveInt,
  redisEnvFields,
  redisTargetOf,
  tracingConfigOf,
} from '@llmgw/config';
import { z } from 'zod';
import { defaultHealthUrl } from './backend-probe.ts';

/** Worker configuration; docs/configuration.md documents each variable. */
export const WorkerEnvSchema = z
  .object({
    ...redisEnvFields,
    KEY_PREFIX: keyPrefix,
    SIM_PORT: port(8001),
    LLM_PROVIDER: z.enum(['openai', 'anthropic']).default('openai'),
    /** Default: the local simulator on SIM_PORT. */
    LLM_BASE_URL: z.url().optional(),
    LLM_API_KEY: z.string().optional(),
    /** Per-request timeout towards the backend (whole generation), ms. */
    LLM_TIMEOUT_MS: positiveInt(600_000),
    WORKER_MODELS: csv(DEFAULT_MODEL).pipe(z.array(z.string().min(1)).min(1, 'at least one model')),
    /** The backend's batch size (vLLM --max-num-seqs): concurrent generations per model queue. */
    WORKER_CONCURRENCY: positiveInt(8),
    /**
     * BullMQ Workers per model, the slots split between them: a BullMQ Worker fetches jobs one
     * round trip at a time, so a burst of 100 jobs waits 100 round trips for its last one with one.
     */
    WORKER_FETCHERS: positiveInt(4),
    /** Backend health endpoint probed with each registration heartbeat; default derived from LLM_BASE_URL. */
    LLM_HEALTH_URL: z.url().optional(),
    /** The worker's registration (for /v1/models, /health) expires this long after its last heartbeat. */
    WORKER_TTL_MS: positiveInt(10_000),
    /**
     * Optional hard cap on concurrent generations per model across all workers (BullMQ global
     * concurrency, stored in Redis). 0 = no cap beyond the sum of worker slots.
     */
    MODEL_MAX_CONCURRENCY: nonNegativeInt(0),
    /**
     * BullMQ job lock. A worker that dies holds its jobs (and their global slots) until the lock
     * expires and the stalled-job check, every half of this, hands them to another worker.
     */
    JOB_LOCK_MS: positiveInt(15_000),
    /** A heartbeat event goes to the client when a job has published nothing for this long. */
    HEARTBEAT_MS: positiveInt(2000),
    /** On SIGTERM, active jobs may finish for this long before they are cancelled. */
    SHUTDOWN_GRACE_MS: nonNegativeInt(30_000),
    INSTANCE_ID: z.string().optional(),
    LOG_LEVEL: logLevel,
    ...otelEnvFields,
    /** Port of the worker's /metrics and /health server (0: any free port). */
    METRICS_PORT: nonNegativeInt(9100),
    METRICS_HOST: z.string().default('0.0.0.0'),
    /** 1: log prompt text with each job (never on by default: prompts are user data). */
    LOG_PROMPTS: bool(false),
    /** Consecutive backend failures (5xx, 429, refused, timeout) that open a model's circuit breaker. */
    BREAKER_FAILURES: positiveInt(3),
    /** An open breaker probes the backend (a one-token completion) after this long; doubles per failed probe. */
    BREAKER_COOLDOWN_MS: positiveInt(5000),
    BREAKER_MAX_COOLDOWN_MS: positiveInt(60_000),
    /** No first token within this long: a backend failure (retried before the first token). */
    LLM_FIRST_TOKEN_TIMEOUT_MS: positiveInt(60_000),
    /** 1: pass the tier's priority as vLLM's `priority` field (vLLM with --scheduling-policy priority). */
    BACKEND_PRIORITY: bool(false),
    /**
     * 1: ask OpenAI-compatible backends for vLLM's `stream_options.continuous_usage_stats` (usage
     * in every chunk), so that a job cut off mid-stream (cancelled, failed) is charged the
     * backend's own prompt and completion counts, not the api's prompt estimate. vLLM and SGLang
     * take it; OpenAI's API does not.
     */
    BACKEND_CONTINUOUS_USAGE: bool(false),
    /** Days the usage ledger keeps each UTC day's counters (the api reads them; both write them). */
    USAGE_RETENTION_DAYS: positiveInt(400),
    /**
     * The share of each model's slots batch requests may use at once (0–1; 0: this worker runs
     * no batches). They start only while no interactive job waits for the model.
     */
    BATCH_MAX_SLOTS_FRACTION: z.coerce.number().min(0).max(1).default(0.5),
  })
  .transform((env, ctx) => {
    const redis = redisTargetOf(env, ctx);
    const LLM_BASE_URL =
      env.LLM_BASE_URL ?? `http://127.0.0.1:${env.SIM_PORT}${env.LLM_PROVIDER === 'openai' ? '/v1' : ''}`;
    // With no LLM_BASE_URL the backend is the local simulator, which serves /health for both APIs.
    const LLM_HEALTH_URL =
      env.LLM_HEALTH_URL ??
      (env.LLM_BASE_URL
        ? defaultHealthUrl(env.LLM_PROVIDER, LLM_BASE_URL)
        : `http://127.0.0.1:${env.SIM_PORT}/health`);
    return { ...env, redis, tracing: tracingConfigOf(env, 'llmgw-worker'), LLM_BASE_URL, LLM_HEALTH_URL };
  });
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

export const parseWorkerEnv = (env: Record<string, string | undefined> = process.env) =>
  parseEnv(WorkerEnvSchema, env);
