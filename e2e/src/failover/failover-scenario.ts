import { freePort } from '@llmgw/devkit';
import { type Simulator, startSimulator } from '@llmgw/sim';
import type { Stack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

export interface ScenarioResult {
  ok: number;
  failed: Record<string, number>;
}

/**
 * The scenario: `total` streams at `concurrency`, for one model served by a healthy
 * worker and a broken one. Counts the streams that end with [DONE] and the full answer.
 */
export async function runStreams(
  stack: Stack,
  total: number,
  concurrency: number,
  maxTokens = 8,
): Promise<ScenarioResult> {
  const result: ScenarioResult = { ok: 0, failed: {} };
  let next = 0;
  const one = async () => {
    while (next < total) {
      const i = next++;
      const res = await stack.chat({
        messages: [{ role: 'user', content: `request ${i}` }],
        max_tokens: maxTokens,
      });
      let reason: string | undefined;
      try {
        if (res.status !== 200) reason = `http_${res.status}`;
        else if (seedTokens(res.data).length !== maxTokens) reason = 'short';
      } catch {
        const last = res.data.at(-1) ?? '';
        reason = /"type":"(\w+)"/.exec(last)?.[1] ?? 'no_done';
      }
      if (reason) result.failed[reason] = (result.failed[reason] ?? 0) + 1;
      else result.ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return result;
}

/** A backend that answers every request with HTTP 500. */
export const alwaysFailing = (): Promise<Simulator> =>
  startSimulator({ port: 0, ttftMs: 1, itlMs: 1, failureRate: 1, failureTypes: ['server_error'] });

/** A port nothing listens on. */
export const closedPort = async (): Promise<string> => `http://127.0.0.1:${await freePort()}/v1`;
