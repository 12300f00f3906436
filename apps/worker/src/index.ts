export { toAnthropicRequest } from './backends/anthropic.ts';
export { type Backend, BackendError, createBackend } from './backends/index.ts';
export { parseWorkerEnv, type WorkerEnv, WorkerEnvSchema } from './env.ts';
export { WorkerService, type WorkerServiceOptions, workerOptionsFromEnv } from './service.ts';
