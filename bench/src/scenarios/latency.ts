import { cpus } from 'node:os';
import { DEFAULT_MODEL } from '@llmgw/config';
import { openAITarget, runStreams, type StreamSample, seedTarget } from '../load.ts';
import { measureCpu } from '../probes.ts';
import { benchHeaders, processPids, startBenchStack } from '../stack.ts';
import { fmt, percentile } from '../stats.ts';
import { cpuTable, markdownTable, targetLine } from '../table.ts';

export interface LatencyConfig {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
  requests: number;
  /** Streams one at a time on an otherwise idle stack: the fixed cost, without CPU contention. */
  serialRequests: number;
}

export const LATENCY_FULL: LatencyConfig = {
  ttftMs: 20,
  itlMs: 10,
  tokens: 64,
  concurrency: 100,
  requests: 1000,
  serialRequests: 100,
};
export const LATENCY_QUICK: LatencyConfig = {
  ttftMs: 20,
  itlMs: 10,
  tokens: 8,
  concurrency: 5,
  requests: 10,
  serialRequests: 5,
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
    const direct = openAITarget(`${stack.simUrl}/v1/chat/completions`, (i) => ({
      model: DEFAULT_MODEL,
      messages: messages(i),
      max_tokens: cfg.tokens,
      stream: true,
    }));
    const gateway = seedTarget(
      `${stack.apiUrls[0]}/chat`,
      (i) => ({ messages: messages(i), max_tokens: cfg.tokens }),
      benchHeaders,
    );
    // Warm-up of both paths: connections, JIT, BullMQ scripts.
    await runStreams(direct, cfg.concurrency, cfg.concurrency);
    await runStreams(gateway, cfg.concurrency, cfg.concurrency);
    const pids = processPids(stack);
    const directCpu = await measureCpu(pids, stack.redisUrl, () =>
      runStreams(direct, cfg.requests, cfg.concurrency),
    );
    const gatewayCpu = await measureCpu(pids, stack.redisUrl, () =>
      runStreams(gateway, cfg.requests, cfg.concurrency),
    );
    const directRun = directCpu.result;
    const gatewayRun = gatewayCpu.result;
    const directSerial = await runStreams(direct, cfg.serialRequests, 1);
    const gatewaySerial = await runStreams(gateway, cfg.serialRequests, 1);
    const rows = [
      summarise('direct (simulator)', directRun.samples),
      summarise('gateway (/chat)', gatewayRun.samples),
    ];
    const serialRows = [
      summarise('direct (simulator), 1 at a time', directSerial.samples),
      summarise('gateway (/chat), 1 at a time', gatewaySerial.samples),
    ];
    const [ds, gs] = serialRows as [LatencyRow, LatencyRow];
    const [d, g] = rows as [LatencyRow, LatencyRow];
    const lines = [
      `latency: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${cfg.requests} requests`,
      '',
      ...markdownTable(
        ['path', 'ok', 'failed', 'TTFT p50 ms', 'TTFT p99 ms', 'gap p50 ms', 'gap p99 ms', 'tokens/stream'],
        [
          ...rows.map((r) => [
            r.path,
            String(r.ok),
            String(r.failed),
            fmt(r.ttftP50),
            fmt(r.ttftP99),
            fmt(r.gapP50),
            fmt(r.gapP99),
            fmt(r.tokensPerStream, 0),
          ]),
          [
            'added by the gateway',
            '',
            '',
            fmt(g.ttftP50 - d.ttftP50),
            fmt(g.ttftP99 - d.ttftP99),
            fmt(g.gapP50 - d.gapP50),
            fmt(g.gapP99 - d.gapP99),
            '',
          ],
        ],
      ),
      '',
      `the same streams one at a time (${cfg.serialRequests} each; no contention for the CPU):`,
      '',
      ...markdownTable(
        ['path', 'ok', 'failed', 'TTFT p50 ms', 'TTFT p99 ms', 'gap p50 ms', 'gap p99 ms', 'tokens/stream'],
        [
          ...serialRows.map((r) => [
            r.path,
            String(r.ok),
            String(r.failed),
            fmt(r.ttftP50),
            fmt(r.ttftP99),
            fmt(r.gapP50),
            fmt(r.gapP99),
            fmt(r.tokensPerStream, 0),
          ]),
          [
            'added by the gateway',
            '',
            '',
            fmt(gs.ttftP50 - ds.ttftP50),
            fmt(gs.ttftP99 - ds.ttftP99),
            fmt(gs.gapP50 - ds.gapP50),
            fmt(gs.gapP99 - ds.gapP99),
            '',
          ],
        ],
      ),
      '',
      targetLine(`added TTFT p50 ≤ 5 ms (${fmt(g.ttftP50 - d.ttftP50)})`, g.ttftP50 - d.ttftP50 <= 5),
      targetLine(`added TTFT p99 ≤ 25 ms (${fmt(g.ttftP99 - d.ttftP99)})`, g.ttftP99 - d.ttftP99 <= 25),
      targetLine(`gap p99 ≤ direct + 5 ms (${fmt(g.gapP99 - d.gapP99)})`, g.gapP99 - d.gapP99 <= 5),
      '',
      ...cpuTable(directCpu, gatewayCpu, g.ok, cpus().length),
      ...[...rows, ...serialRows]
        .filter((r) => r.firstError)
        .map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return { rows: [...rows, ...serialRows], lines };
  } finally {
    await stack.close();
  }
}
