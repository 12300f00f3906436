import {
  bool,
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
import { shedPoints, topShedPoint } from './admission/shedding.ts';
import { loadTiers } from './auth/tiers.ts';
import { parsePrices } from './usage/prices.ts';

/** Api configuration; docs/configuration.md documents each variable. */
const ApiEnvFields = z.object({
  PORT: port(8000),
  HOST: z.string().default('0.0.0.0'),
  ...redisEnvFields,
  /**
   * A request-path Redis command unanswered for this long fails (503 service_unavailable), so a
   * hung Redis does not hold every request. Not applied to BullMQ blocking or pub/sub connections.
   */
  REDIS_COMMAND_TIMEOUT_MS: positiveInt(1000),
  /**
   * `1`: the api sits behind one reverse proxy (deploy/nginx.conf) and the client address is the
   * last `X-Forwarded-For` entry, the one that proxy appended. `0`: the socket's peer address;
   * X-Forwarded-For is ignored (any client could write it).
   */
  TRUST_PROXY: bool(false),
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
  /**
   * The hard ceiling: no request of any tier is admitted while this many jobs wait for the
   * model (503 server_overloaded). Lower tiers are refused earlier, at their `shed_at`.
   */
  QUEUE_MAX_WAITING: positiveInt(24),
  /**
   * /ready answers 503 once every model's waiting depth reached this. Default: the highest tier's
   * shed point (QUEUE_MAX_WAITING with the default tiers), the depth at which no request is
   * admitted any more; lower is refused — every replica shares the queue, so all pods would go
   * unready together while requests could still be admitted.
   */
  READY_MAX_WAITING: z.coerce.number().int().positive().optional(),
  /** A job not started within this long is removed; its client gets 503 queue_timeout. */
  QUEUE_TIMEOUT_MS: positiveInt(30_000),
  /**
   * Every event of a generation is kept in its event log (a Redis Stream) for this long after the
   * last one: resume (`GET /v1/jobs/{id}/events`), idempotent replay, async results.
   */
  JOB_RESULT_TTL_S: positiveInt(3600),
  /** The most events one job's log keeps (a longer one cannot be replayed from its start). */
  JOB_LOG_MAX_EVENTS: positiveInt(10_000),
  /**
   * A client that disconnects mid-generation has this long to reconnect and resume it; then the
   * job is cancelled (slot freed, quota settled, backend aborted). 0: cancelled at once.
   */
  RESUME_GRACE_MS: nonNegativeInt(10_000),
  /**
   * Tries of one job when its backend fails before the first token (refused, 5xx, 429, no first
   * token in time), each on another worker when one exists; 1 = no retry.
   */
  BACKEND_MAX_ATTEMPTS: positiveInt(3),
  /** Wait before the first retry, ms; doubles per retry. */
  BACKEND_RETRY_BACKOFF_MS: nonNegativeInt(250),
  /**
   * 1: a model the gateway knows (in MODELS, or served by a worker before) but no live worker
   * serves right now is queued anyway, for up to QUEUE_TIMEOUT_MS, so a pool scaled to zero can
   * wake on demand. 0: 503 model_unavailable at once.
   */
  SCALE_TO_ZERO: bool(false),
  /**
   * A model no live worker has served for this long is forgotten: /health stops reporting it and
   * requests for it get 404 instead of 503. 0: never. MODELS are never forgotten. Default 24 h,
   * or never with SCALE_TO_ZERO (a pool may sleep longer, and a forgotten model would not wake it).
   */
  MODEL_FORGET_AFTER_MS: z.coerce.number().int().min(0).optional(),
  /** Models the gateway serves even before any worker registered them (comma list). */
  MODELS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((m) => m.trim())
        .filter((m) => m !== ''),
    ),
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
  /**
   * The largest file `POST /v1/files` takes (a batch input file), bytes: OpenAI's 200 MB, as MiB.
   * Larger is 400. BODY_LIMIT_BYTES does not apply to the upload.
   */
  BATCH_FILE_MAX_BYTES: positiveInt(200 * 1024 * 1024),
  /** The most requests (lines) in one batch input file: OpenAI's 50,000. More is 400. */
  BATCH_MAX_REQUESTS: positiveInt(50_000),
  /** Days an uploaded file is kept (its `expires_at`); then Redis deletes it. */
  FILE_TTL_DAYS: positiveInt(30),
  /** Days the usage ledger keeps each UTC day's counters (`GET /v1/usage`, `/admin/usage`). */
  USAGE_RETENTION_DAYS: positiveInt(400),
  /**
   * Prices as JSON, per model: `{"<model>":{"input":x,"output":y}}`, USD per million prompt and
   * completion tokens. Set: the usage answers have cost columns.
   */
  PRICES_JSON: z.string().optional(),
  INSTANCE_ID: z.string().optional(),
  LOG_LEVEL: logLevel,
  ...otelEnvFields,
});
/**
 * The fields, plus the tier table parsed from TIERS_JSON / TIERS_FILE and the price table from
 * PRICES_JSON (a bad one names its variable).
 */
export const ApiEnvSchema = ApiEnvFields.transform((env, ctx) => {
  const redis = redisTargetOf(env, ctx);
  let PRICES: ReturnType<typeof parsePrices>;
  try {
    PRICES = parsePrices(env.PRICES_JSON);
  } catch (err) {
    ctx.addIssue({ code: 'custom', path: ['PRICES_JSON'], message: (err as Error).message });
    return z.NEVER;
  }
  try {
    return {
      ...env,
      redis,
      tracing: tracingConfigOf(env, 'llmgw-api'),
      TIERS: loadTiers(env.TIERS_JSON, env.TIERS_FILE),
      PRICES,
    };
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      path: [env.TIERS_JSON !== undefined ? 'TIERS_JSON' : 'TIERS_FILE'],
      message: (err as Error).message,
    });
    return z.NEVER;
  }
})
  .transform((env) => {
    const SHED_AT = shedPoints(env.TIERS, env.QUEUE_MAX_WAITING);
    return {
      ...env,
      SHED_AT,
      READY_MAX_WAITING: env.READY_MAX_WAITING ?? topShedPoint(SHED_AT),
      MODEL_FORGET_AFTER_MS: env.MODEL_FORGET_AFTER_MS ?? (env.SCALE_TO_ZERO ? 0 : 24 * 60 * 60 * 1000),
    };
  })
  .superRefine((env, ctx) => {
    const tiersVar = env.TIERS_JSON !== undefined ? 'TIERS_JSON' : 'TIERS_FILE';
    for (const [name, t] of Object.entries(env.TIERS)) {
      if (t.shed_at !== undefined && t.shed_at > env.QUEUE_MAX_WAITING) {
        ctx.addIssue({
          code: 'custom',
          path: [tiersVar],
          message: `${name}.shed_at ${t.shed_at} is above QUEUE_MAX_WAITING ${env.QUEUE_MAX_WAITING}, the ceiling for every tier`,
        });
      }
    }
    const top = topShedPoint(env.SHED_AT);
    if (env.READY_MAX_WAITING < top) {
      ctx.addIssue({
        code: 'custom',
        path: ['READY_MAX_WAITING'],
        message: `must be at least ${top}, the depth at which the highest tier is refused (below it /ready fails while requests are still admitted)`,
      });
    }
  });
export type ApiEnv = z.infer<typeof ApiEnvSchema>;

export const parseApiEnv = (env: Record<string, string | undefined> = process.env) =>
  parseEnv(ApiEnvSchema, env);
