import type { BackendHealth } from '@llmgw/protocol';

/**
 * Where a backend answers health checks: vLLM and TGI serve `GET /health` at the root, beside the
 * `/v1` API. Hosted APIs have no such endpoint; set LLM_HEALTH_URL, or leave it unset and the
 * backend's health reads `unknown`.
 */
export function defaultHealthUrl(provider: string, baseURL: string): string | undefined {
  if (provider !== 'openai') return undefined;
  return `${baseURL.replace(/\/+$/, '').replace(/\/v1$/, '')}/health`;
}

export async function probeBackend(url: string | undefined, timeoutMs = 1000): Promise<BackendHealth> {
  const checkedAt = Date.now();
  if (!url) return { status: 'unknown', checkedAt };
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    return res.ok
      ? { status: 'ok', latencyMs, checkedAt }
      : { status: 'error', latencyMs, detail: `HTTP ${res.status}`, checkedAt };
  } catch (err) {
    return { status: 'error', detail: (err as Error).message, checkedAt };
  }
}
