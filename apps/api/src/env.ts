import {
  bool,
  DEFAULT_MODEL,
  keyPrefix,
  logLevel,
  nonNegativeInt,
  parseEnv,
  port,
  positiveInt,
  redisUrl,
} from '@llmgw/config';
import { z } from 'zod';
import { loadTiers } from './auth/tiers.ts';

/** Api configuration; the README's configuration table documents each variable. */
const ApiEnvFields = z.object({
  PORT: port(8000),
  HOST: z.string().default('0.0.0.0'),
  REDIS_URL: redisUrl,
  KEY_PREFIX: keyPrefix,
  /** Model used when a request names none. */
  DEFAULT_MODEL: z.string().min(1).default(DEFAULT_MODEL),
  /** Largest request body, bytes (413 above). */
  BODY_LIMIT_BYTES: positiveInt(1024 * 1024),
  /**
   * A started job that publishes nothing (not even a heartbeat) for this long is declared lost and
   * its client gets an error frame. Workers send heartbeats every HEARTBEAT_MS (2 s by default).
   */
  JOB_SILENCE_TIMEOUT_MS: positiveInt(10_000),
  /** Refuse new requests (503 server_overloaded) when this many jobs already wait for the model. */
  QUEUE_MAX_WAITING: positiveInt(24),
  /** /ready answers 503 when more jobs than this wait (all models). */
  READY_MAX_WAITING: positiveInt(16),
  /** A job not started within this long is removed; its client gets 503 queue_timeout. */
  QUEUE_TIMEOUT_MS: positiveInt(30_000),
  /** How often a waiting streaming client is told its queue position. */
  QUEUE_POSITION_INTERVAL_MS: positiveInt(1000),
  /** Starvation guard: a job waiting this long is raised to the top priority. */
  PRIORITY_AGING_MS: positiveInt(10_000),
  /**
   * `api_key`: clients authenticate with keys issued by `pnpm keys` or the admin API.
   * `trusted_headers`: X-User-ID / X-User-Tier set by an authenticating proxy — unsafe if clients
   * can reach the api directly.
   */
  AUTH_MODE: z.enum(['api_key', 'trusted_headers']).default('api_key'),
  /** Bearer token of the /admin API; unset disables it. */
  ADMIN_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  /** `1`: the admin surface only reads — mutating /admin requests get 403, Bull Board is read-only. */
  ADMIN_READONLY: bool(false),
  /** Tier table as JSON (wins over TIERS_FILE); default: free/pro/enterprise of the write-up. */
  TIERS_JSON: z.string().optional(),
  TIERS_FILE: z.string().optional(),
  /** Window of the per-minute request limit, ms (tests shorten it). */
  RATE_LIMIT_WINDOW_MS: positiveInt(60_000),
  /**
   * A started job silent before its first token (its worker may have died) is given this long for
   * BullMQ to re-run it elsewhere (worker JOB_LOCK_MS, 15 s, plus the stalled check) before its
   * client gets `worker_lost`.
   */
  JOB_RECOVERY_TIMEOUT_MS: positiveInt(30_000),
  /** On SIGTERM, open streams may finish for this long; the rest end with an error frame. */
  SHUTDOWN_GRACE_MS: nonNegativeInt(30_000),
  INSTANCE_ID: z.string().optional(),
  LOG_LEVEL: logLevel,
});
/** The fields, plus the tier table parsed from TIERS_JSON / TIERS_FILE (a bad one names its variable). */
export const ApiEnvSchema = ApiEnvFields.transform((env, ctx) => {
  try {
    return { ...env, TIERS: loadTiers(env.TIERS_JSON, env.TIERS_FILE) };
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      path: [env.TIERS_JSON !== undefined ? 'TIERS_JSON' : 'TIERS_FILE'],
      message: (err as Error).message,
    });
    return z.NEVER;
  }
});
export type ApiEnv = z.infer<typeof ApiEnvSchema>;

export const parseApiEnv = (env: Record<string, string | undefined> = process.env) =>
  parseEnv(ApiEnvSchema, env);
