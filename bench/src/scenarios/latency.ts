import { DEFAULT_MODEL } from '@llmgw/config';
import { openAITarget, runStreams, type StreamSample, seedTarget } from '../load.ts';
import { startBenchStack } from '../stack.ts';
import { fmt, percentile } from '../stats.ts';

export interface LatencyConfig {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
  requests: number;
}

export const LATENCY_FULL: LatencyConfig = {
  ttftMs: 20,
  itlMs: 10,
  tokens: 64,
  concurrency: 100,
  requests: 1000,
};
export const LATENCY_QUICK: LatencyConfig = {
  ttftMs: 20,
  itlMs: 10,
  tokens: 8,
  concurrency: 5,
  requests: 10,
};

export interface LatencyRow {
  path: string;
  ok: number;
  failed: number;
  ttftP50: number;
  ttftP99: number;
  gapP50: number;
  gapP99: number;
  tokensPerStream: number;
  firstError?: string;
}

function summarise(path: string, samples: StreamSample[]): LatencyRow {
  const ok = samples.filter((s) => s.ok);
  return {
    path,
    ok: ok.length,
    failed: samples.length - ok.length,
    ttftP50: percentile(
      ok.map((s) => s.ttftMs),
      50,
    ),
    ttftP99: percentile(
      ok.map((s) => s.ttftMs),
      99,
    ),
    gapP50: percentile(
      ok.flatMap((s) => s.gaps),
      50,
    ),
    gapP99: percentile(
      ok.flatMap((s) => s.gaps),
      99,
    ),
    tokensPerStream: ok.length ? ok.reduce((a, s) => a + s.tokens, 0) / ok.length : 0,
    firstError: samples.find((s) => !s.ok)?.error,
  };
}

/**
 * TTFT and inter-token gaps through the gateway (/chat: api → Redis → worker → simulator →
 * worker → Redis → api) and directly against the same simulator, in one run.
 */
export async function latencyScenario(cfg: LatencyConfig): Promise<{ rows: LatencyRow[]; lines: string[] }> {
  const slots = String(Math.max(cfg.concurrency, 8));
  const stack = await startBenchStack({
    sim: {
      SIM_TTFT_MS: String(cfg.ttftMs),
      SIM_ITL_MS: String(cfg.itlMs),
      SIM_MAX_NUM_SEQS: slots,
      SIM_OUTPUT_TOKENS: String(cfg.tokens),
    },
    worker: { WORKER_CONCURRENCY: slots },
  });
  try {
    const messages = (i: number) => [{ role: 'user', content: `benchmark request ${i}` }];
    // Warm-up: connections, JIT, BullMQ scripts.
    await runStreams(
      seedTarget(`${stack.apiUrls[0]}/chat`, (i) => ({ messages: messages(i), max_tokens: cfg.tokens })),
      cfg.concurrency,
      cfg.concurrency,
    );
    const direct = await runStreams(
      openAITarget(`${stack.simUrl}/v1/chat/completions`, (i) => ({
        model: DEFAULT_MODEL,
        messages: messages(i),
        max_tokens: cfg.tokens,
        stream: true,
      })),
      cfg.requests,
      cfg.concurrency,
    );
    const gateway = await runStreams(
      seedTarget(`${stack.apiUrls[0]}/chat`, (i) => ({ messages: messages(i), max_tokens: cfg.tokens })),
      cfg.requests,
      cfg.concurrency,
    );
    const rows = [
      summarise('direct (simulator)', direct.samples),
      summarise('gateway (/chat)', gateway.samples),
    ];
    const [d, g] = rows as [LatencyRow, LatencyRow];
    const lines = [
      `latency: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${cfg.requests} requests`,
      '| path | ok | failed | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms | tokens/stream |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.path} | ${r.ok} | ${r.failed} | ${fmt(r.ttftP50)} | ${fmt(r.ttftP99)} | ${fmt(r.gapP50)} | ${fmt(r.gapP99)} | ${fmt(r.tokensPerStream, 0)} |`,
      ),
      `| added by the gateway | | | ${fmt(g.ttftP50 - d.ttftP50)} | ${fmt(g.ttftP99 - d.ttftP99)} | ${fmt(g.gapP50 - d.gapP50)} | ${fmt(g.gapP99 - d.gapP99)} | |`,
      'targets: added TTFT p50 ≤ 5 ms, p99 ≤ 25 ms; gap p99 ≤ direct + 5 ms',
      ...rows.filter((r) => r.firstError).map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return { rows, lines };
  } finally {
    await stack.close();
  }
}
