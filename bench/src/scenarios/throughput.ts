import { cpus } from 'node:os';
import { DEFAULT_MODEL } from '@llmgw/config';
import { openAITarget, runStreams, type StreamSample, seedTarget } from '../load.ts';
import { measureCpu } from '../probes.ts';
import { benchHeaders, processPids, startBenchStack } from '../stack.ts';
import { fmt } from '../stats.ts';
import { cpuTable, markdownTable } from '../table.ts';

export interface ThroughputConfig {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
  /** Streams per path; the direct path is faster, so it gets its own count to run as long. */
  gatewayRequests: number;
  directRequests: number;
}

export const THROUGHPUT_FULL: ThroughputConfig = {
  ttftMs: 0,
  itlMs: 0,
  tokens: 32,
  concurrency: 50,
  gatewayRequests: 4000,
  directRequests: 12_000,
};
export const THROUGHPUT_QUICK: ThroughputConfig = {
  ttftMs: 0,
  itlMs: 0,
  tokens: 32,
  concurrency: 10,
  gatewayRequests: 100,
  directRequests: 100,
};

export interface ThroughputRow {
  path: string;
  ok: number;
  failed: number;
  wallS: number;
  streamsPerS: number;
  tokensPerS: number;
  firstError?: string;
}

function summarise(path: string, samples: StreamSample[], wallMs: number): ThroughputRow {
  const ok = samples.filter((s) => s.ok);
  const tokens = ok.reduce((a, s) => a + s.tokens, 0);
  return {
    path,
    ok: ok.length,
    failed: samples.length - ok.length,
    wallS: wallMs / 1000,
    streamsPerS: ok.length / (wallMs / 1000),
    tokensPerS: tokens / (wallMs / 1000),
    firstError: samples.find((s) => !s.ok)?.error,
  };
}

/**
 * Completed streams and tokens per second with a simulator that costs nothing per token (ITL 0):
 * what the gateway itself can carry on this machine, next to the simulator alone.
 */
export async function throughputScenario(
  cfg: ThroughputConfig,
): Promise<{ rows: ThroughputRow[]; lines: string[] }> {
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
    const messages = (i: number) => [{ role: 'user', content: `throughput request ${i}` }];
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
    await runStreams(direct, cfg.concurrency * 2, cfg.concurrency);
    await runStreams(gateway, cfg.concurrency * 2, cfg.concurrency);
    const pids = processPids(stack);
    const directCpu = await measureCpu(pids, stack.redisUrl, () =>
      runStreams(direct, cfg.directRequests, cfg.concurrency),
    );
    const gatewayCpu = await measureCpu(pids, stack.redisUrl, () =>
      runStreams(gateway, cfg.gatewayRequests, cfg.concurrency),
    );
    const d = directCpu.result;
    const g = gatewayCpu.result;
    const rows = [
      summarise('direct (simulator)', d.samples, d.wallMs),
      summarise('gateway (/chat)', g.samples, g.wallMs),
    ];
    const [dr, gr] = rows as [ThroughputRow, ThroughputRow];
    const lines = [
      `throughput: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${cfg.directRequests} direct / ${cfg.gatewayRequests} gateway requests`,
      '',
      ...markdownTable(
        ['path', 'ok', 'failed', 'wall s', 'streams/s', 'tokens/s'],
        [
          ...rows.map((r) => [
            r.path,
            String(r.ok),
            String(r.failed),
            fmt(r.wallS),
            fmt(r.streamsPerS),
            fmt(r.tokensPerS, 0),
          ]),
          [
            'gateway ÷ direct',
            '',
            '',
            '',
            fmt(gr.streamsPerS / dr.streamsPerS, 2),
            fmt(gr.tokensPerS / dr.tokensPerS, 2),
          ],
        ],
      ),
      '',
      'no target: the ratio is what the queue path costs when the backend is free',
      '',
      ...cpuTable(directCpu, gatewayCpu, gr.ok, cpus().length),
      ...rows.filter((r) => r.firstError).map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return { rows, lines };
  } finally {
    await stack.close();
  }
}
