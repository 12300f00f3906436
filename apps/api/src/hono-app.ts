import type { Logger } from '@llmgw/observability';
import type { Keys } from '@llmgw/redis';
import type { Hono } from 'hono';
import type { Redis } from 'ioredis';
import type { ApiKeyStore } from './auth/api-keys.ts';
import type { Tiers } from './auth/tiers.ts';
import type { AppEnv } from './context.ts';
import type { HealthDeps } from './health/checks.ts';
import type { ChatService } from './jobs/chat-service.ts';
import type { Dispatcher } from './jobs/dispatcher.ts';
import type { ApiMetrics } from './metrics.ts';
import type { AuthMode } from './middleware/authenticate.ts';
import type { ModelRegistry } from './models/registry.ts';

/**
 * The app's type and what it is built from, below both app.ts and the routes it registers: a
 * route imports these from here, never from app.ts, which imports the routes.
 */
export type GatewayApp = Hono<AppEnv>;

export interface AppDeps {
  log: Logger;
  chat: ChatService;
  models: ModelRegistry;
  health: HealthDeps;
  defaultModel: string;
  bodyLimitBytes: number;
  authMode: AuthMode;
  keyStore: ApiKeyStore;
  tiers: Tiers;
  /** For the rate limiter. */
  redis: Redis;
  keys: Keys;
  rateWindowMs: number;
  metrics: ApiMetrics;
  /** Unset: the /admin API is disabled (404). */
  adminToken: string | undefined;
  /** ADMIN_READONLY: the admin surface only reads (mutating requests 403, Bull Board read-only). */
  adminReadonly: boolean;
  /** The model queues (admin: stats, pause/resume, Bull Board). */
  dispatcher: Dispatcher;
  /** TRUST_PROXY: client addresses come from X-Forwarded-For (see client-address.ts). */
  trustProxy: boolean;
}
