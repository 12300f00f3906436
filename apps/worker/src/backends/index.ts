import type { WorkerEnv } from '../env.ts';
import { createAnthropicBackend } from './anthropic.ts';
import type { Backend } from './backend.ts';
import { createOpenAIBackend } from './openai.ts';

export type { Backend, GenerateRequest, GenerateResult } from './backend.ts';
export { BackendError } from './backend.ts';

/** The backend this worker drives, by LLM_PROVIDER. */
export function createBackend(
  env: Pick<
    WorkerEnv,
    'LLM_PROVIDER' | 'LLM_BASE_URL' | 'LLM_API_KEY' | 'LLM_TIMEOUT_MS' | 'BACKEND_CONTINUOUS_USAGE'
  >,
): Backend {
  switch (env.LLM_PROVIDER) {
    case 'openai':
      return createOpenAIBackend({
        baseURL: env.LLM_BASE_URL,
        apiKey: env.LLM_API_KEY,
        timeoutMs: env.LLM_TIMEOUT_MS,
        continuousUsage: env.BACKEND_CONTINUOUS_USAGE,
      });
    case 'anthropic':
      return createAnthropicBackend({
        baseURL: env.LLM_BASE_URL,
        apiKey: env.LLM_API_KEY,
        timeoutMs: env.LLM_TIMEOUT_MS,
      });
  }
}
