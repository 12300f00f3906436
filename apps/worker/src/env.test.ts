import { describe, expect, it } from 'vitest';
import { parseWorkerEnv } from './env.ts';

describe('worker env', () => {
  it('defaults to the local simulator, health endpoint included', () => {
    const env = parseWorkerEnv({});
    expect(env.LLM_BASE_URL).toBe('http://127.0.0.1:8001/v1');
    expect(env.LLM_HEALTH_URL).toBe('http://127.0.0.1:8001/health');
    expect(parseWorkerEnv({ LLM_PROVIDER: 'anthropic' }).LLM_BASE_URL).toBe('http://127.0.0.1:8001');
  });

  it('derives a vLLM health URL from LLM_BASE_URL; none for a hosted Anthropic API', () => {
    expect(parseWorkerEnv({ LLM_BASE_URL: 'http://vllm:8000/v1' }).LLM_HEALTH_URL).toBe(
      'http://vllm:8000/health',
    );
    expect(
      parseWorkerEnv({ LLM_PROVIDER: 'anthropic', LLM_BASE_URL: 'https://api.anthropic.com' }).LLM_HEALTH_URL,
    ).toBeUndefined();
    expect(parseWorkerEnv({ LLM_HEALTH_URL: 'http://x:1/ping' }).LLM_HEALTH_URL).toBe('http://x:1/ping');
  });

  it('names a bad variable', () => {
    expect(() => parseWorkerEnv({ WORKER_CONCURRENCY: '0' })).toThrow(/WORKER_CONCURRENCY/);
  });
});
