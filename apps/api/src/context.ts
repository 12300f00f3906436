import type { HttpBindings } from '@hono/node-server';
import type { Logger } from '@llmgw/observability';
import type { KeyLimits } from './auth/api-keys.ts';

/** The authenticated caller. */
export interface Principal {
  userId: string;
  tier: string;
  /** Public id of the API key used (api_key mode). */
  keyId?: string;
  /** What the key allows besides its tier (api_key mode; absent: the tier decides alone). */
  grant?: KeyGrant;
}

/** A key's own rules: its model allowlist, its limits (each replaces the tier's), its budget. */
export interface KeyGrant {
  models?: string[];
  limits?: KeyLimits;
  monthlyBudget?: number;
}

/** Request-scoped variables, declared once for every handler and middleware. */
export interface RequestVars {
  principal?: Principal;
  requestId: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Child logger carrying `request_id` (and, once known, `user_id`). */
  log: Logger;
  /** Filled in by handlers for the `request_completed` line. */
  userId?: string;
  model?: string;
  tokens?: { prompt: number; completion: number };
  /** BODY_LIMIT_BYTES, for the body reader (middleware/json-body.ts). */
  bodyLimit?: number;
}

/**
 * Hono environment of the app. `Bindings` are @hono/node-server's (absent under `app.request()`
 * in tests, hence Partial).
 */
export interface AppEnv {
  Bindings: Partial<HttpBindings>;
  Variables: RequestVars;
}
