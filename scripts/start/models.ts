import { z } from 'zod';
import type { StartEnv } from './env.ts';

const ModelList = z.object({ data: z.array(z.object({ id: z.string().min(1) })).min(1) });

/** What an OpenAI-compatible backend (vLLM, …) lists at `GET /v1/models`, or Anthropic's equivalent. */
export async function listModels(
  baseUrl: string,
  env: Pick<StartEnv, 'LLM_PROVIDER' | 'LLM_API_KEY'>,
): Promise<{ url: string; models: string[] }> {
  const base = baseUrl.replace(/\/+$/, '');
  const anthropic = env.LLM_PROVIDER === 'anthropic';
  const url = anthropic ? `${base}/v1/models` : `${base}/models`;
  const key = env.LLM_API_KEY;
  const headers: Record<string, string> = anthropic
    ? { 'anthropic-version': '2023-06-01', ...(key && { 'x-api-key': key }) }
    : key
      ? { authorization: `Bearer ${key}` }
      : {};
  let body: unknown;
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = await res.json();
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause?.code;
    throw new Error(`GET ${url} failed (${cause ?? (err as Error).message})`);
  }
  const parsed = ModelList.safeParse(body);
  if (!parsed.success) throw new Error(`GET ${url} lists no models`);
  return { url, models: parsed.data.data.map((m) => m.id) };
}
