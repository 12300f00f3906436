import type { Logger } from '@llmgw/observability';
import type { Keys } from '@llmgw/redis';
import type { Hono } from 'hono';
import type { Redis } from 'ioredis';
import type { Admission } from './admission/admission.ts';
import type { ApiKeyStore } from './auth/api-keys.ts';
import type { Tiers } from './auth/tiers.ts';
import type { BatchesApi } from './batch/bodies.ts';
import type { AppEnv } from './context.ts';
import type { Idempotency } from './durable/idempotency.ts';
import type { Jobs } from './durable/jobs.ts';
import type { Files } from './files/files.ts';
import type { HealthDeps } from './health/checks.ts';
import type { ApiMetrics } from './metrics.ts';
import type { AuthMode } from './middleware/authenticate.ts';
import type { ModelRegistry } from './models/registry.ts';
import type { JobCanceller } from './queue/cancel.ts';
import type { Dispatcher } from './queue/dispatcher.ts';
import type { Submitter } from './queue/submit.ts';
import type { UsageLedger } from './usage/ledger.ts';

/**
 * The app's type and what it is built from, below both app.ts and the routes it registers: a
 * route imports these from here, never from app.ts, which imports the routes. Each route takes
 * only its slice (`Pick<AppDeps, …>`); app.ts, which wires the middleware, sees the whole.
 */
export type GatewayApp = Hono<AppEnv>;

export interface AppDeps {
  log: Logger;
  /** Tracing on (OTEL_EXPORTER_OTLP_ENDPOINT): a span per request (middleware/request-span.ts). */
  tracing?: boolean;
  metrics: ApiMetrics;
  health: HealthDeps;
  models: ModelRegistry;
  defaultModel: string;
  bodyLimitBytes: number;
  /** A generation request's first step: admit or throw (admission/). */
  admission: Admission;
  /** Its second: onto its model's queue, subscribed to the reply first (queue/submit.ts). */
  submitter: Submitter;
  /** For the relay, its third: stops the job of a client that left (queue/cancel.ts). */
  canceller: JobCanceller;
  authMode: AuthMode;
  keyStore: ApiKeyStore;
  tiers: Tiers;
  /** For the rate limiter and the admin login throttle. */
  redis: Redis;
  keys: Keys;
  rateWindowMs: number;
  /** Unset: the /admin API is disabled (404). */
  adminToken: string | undefined;
  /** ADMIN_READONLY: the admin surface only reads (mutating requests 403, Bull Board read-only). */
  adminReadonly: boolean;
  /** The model queues (admin: stats, pause/resume, Bull Board). */
  dispatcher: Dispatcher;
  /** Jobs as `/v1/jobs` sees them: follow (resume), status, list, cancel. */
  jobs: Jobs;
  /** Idempotency-Key claims. */
  idempotency: Idempotency;
  /** TRUST_PROXY: client addresses come from X-Forwarded-For (see client-address.ts). */
  trustProxy: boolean;
  /** The usage ledger: `/v1/usage`, `/admin/usage`, and the jobs the api ends before they ran. */
  usage: UsageLedger;
  /** Uploaded files (`/v1/files`), in Redis. */
  files: Files;
  /** The Batch API (`/v1/batches`). */
  batches: BatchesApi;
}
