import { Agent } from 'node:http';
import { postSSE } from '@llmgw/devkit';
import { simTokens } from '@llmgw/e2e/spawned';
import { percentile } from './stats.ts';

export interface StreamSample {
  ok: boolean;
  /** Request sent → first token frame, ms. */
  ttftMs: number;
  /** Gaps between consecutive text frames, ms (one frame may carry several tokens under load). */
  gaps: number[];
  tokens: number;
  totalMs: number;
  error?: string;
}

/** Headers of request `i` (the gateway's: which user, which tier). */
export type HeadersFor = (i: number) => Record<string, string>;

export interface Target {
  url: string;
  body: (i: number) => unknown;
  headers?: HeadersFor;
  /**
   * The simulator's tokens in one `data:` payload (0: not a text frame). Counted from the text, not
   * per frame: the gateway merges neighbouring text into one frame under load.
   */
  tokensIn: (data: string) => number;
  /** Which payload ends a stream successfully. */
  isEnd: (data: string) => boolean;
}

const simTokenCount = (text: string): number => simTokens(text).length;

/** Seed `/chat` frames. */
export const seedTarget = (url: string, body: (i: number) => unknown, headers?: HeadersFor): Target => ({
  url,
  body,
  headers,
  tokensIn: (d) => (d.startsWith('{"token"') ? simTokenCount((JSON.parse(d) as { token: string }).token) : 0),
  isEnd: (d) => d === '[DONE]',
});

/** OpenAI chunks (the simulator directly, or the gateway's /v1 endpoint). */
export const openAITarget = (url: string, body: (i: number) => unknown, headers?: HeadersFor): Target => ({
  url,
  body,
  headers,
  tokensIn: (d) =>
    d.includes('"content":"') && !d.includes('"content":""')
      ? simTokenCount(
          (JSON.parse(d) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '',
        )
      : 0,
  isEnd: (d) => d === '[DONE]',
});

/**
 * Runs `total` streaming requests, `concurrency` at a time, over keep-alive connections, and
 * measures each on arrival of its frames. A request that does not end with the end frame counts
 * as failed, with the reason.
 */
export async function runStreams(
  target: Target,
  total: number,
  concurrency: number,
): Promise<{ samples: StreamSample[]; wallMs: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: StreamSample[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      let first = 0;
      let prev = 0;
      const gaps: number[] = [];
      let tokens = 0;
      try {
        const res = await postSSE(target.url, target.body(i), {
          agent,
          headers: target.headers?.(i),
          onData: (data, at) => {
            const n = target.tokensIn(data);
            if (n === 0) return;
            tokens += n;
            if (first === 0) first = at;
            else gaps.push(at - prev);
            prev = at;
            return undefined;
          },
        });
        const last = res.data[res.data.length - 1];
        const ok = res.status === 200 && last !== undefined && target.isEnd(last);
        samples.push({
          ok,
          ttftMs: first ? first - res.startedAt : Number.NaN,
          gaps,
          tokens,
          totalMs: res.endedAt - res.startedAt,
          ...(!ok && { error: `status ${res.status}, last frame ${last ?? res.body.slice(0, 200)}` }),
        });
      } catch (err) {
        samples.push({
          ok: false,
          ttftMs: Number.NaN,
          gaps,
          tokens,
          totalMs: 0,
          error: (err as Error).message,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const wallMs = performance.now() - started;
  agent.destroy();
  return { samples, wallMs };
}

/** What a run of streams comes to: how many passed, their rate and TTFT, the first failure. */
export function streamStats(samples: StreamSample[], wallMs: number) {
  const ok = samples.filter((s) => s.ok);
  const ttfts = ok.map((s) => s.ttftMs);
  return {
    ok: ok.length,
    failed: samples.length - ok.length,
    streamsPerS: ok.length / (wallMs / 1000),
    ttftP50: percentile(ttfts, 50),
    ttftP99: percentile(ttfts, 99),
    firstError: samples.find((s) => !s.ok)?.error,
  };
}
