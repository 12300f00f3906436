/**
 * `@llmgw/api` as a library: what runs an api in another process's hands (the cross-process tests
 * in e2e/, the benchmark) and the pieces those tests check against. main.ts is the process entry.
 */
export type { QueueStats } from './admin/queue-routes.ts';
export { SESSION_COOKIE } from './admin/session.ts';
export { type ApiKeyRecord, ApiKeyStore, type CreatedKey } from './auth/api-keys.ts';
export { CLIP_CHARS } from './clip.ts';
export { type ApiEnv, ApiEnvSchema, parseApiEnv } from './env.ts';
export { ERROR_STATUS, type ErrorCode } from './errors/codes.ts';
export { ModelRegistry, type RegistryOptions, type RegistrySnapshot } from './models/registry.ts';
export { type ApiServer, startApiServer } from './server.ts';
export { fromMessagesRequest, MessagesRequest, type TranslatedMessages } from './wire/anthropic-request.ts';
