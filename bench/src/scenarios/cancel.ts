import { Agent } from 'node:http';
import { DEFAULT_MODEL } from '@llmgw/config';
import { postSSE } from '@llmgw/devkit';
import { openAITarget, seedTarget, type Target } from '../load.ts';
import { simStats, sleep } from '../probes.ts';
import { benchHeaders, startBenchStack } from '../stack.ts';
import { fmt, percentile } from '../stats.ts';
import { markdownTable, targetLine } from '../table.ts';

export interface CancelConfig {
  ttftMs: number;
  itlMs: number;
  /** Disconnects per path, one at a time. */
  disconnects: number;
  /** Tokens received before the client disconnects (mid-stream). */
  afterTokens: number;
  /** Pause between two polls of /sim/stats, ms. */
  pollEveryMs: number;
}

export const CANCEL_FULL: CancelConfig = {
  ttftMs: 20,
  itlMs: 10,
  disconnects: 200,
  afterTokens: 3,
  pollEveryMs: 1,
};
export const CANCEL_QUICK: CancelConfig = { ...CANCEL_FULL, disconnects: 5 };

/** Give up on one disconnect after this long (counted as failed: the abort never reached the simulator). */
const SEEN_TIMEOUT_MS = 2000;

export interface CancelRow {
  path: string;
  ok: number;
  failed: number;
  p50: number;
  p99: number;
  /** Upper bound of each measurement (first poll that saw the abort answered), p99. */
  upperP99: number;
  /** Width of the interval the abort is known to lie in, p50: the measurement's resolution. */
  resolutionP50: number;
  firstError?: string;
}

interface Measurement {
  ok: boolean;
  estimateMs: number;
  upperMs: number;
  widthMs: number;
  error?: string;
}

/**
 * One stream, cut by the client after `afterTokens` tokens; then /sim/stats is polled until its
 * `aborted` counter moves. The simulator counts the abort when its response's `close` event fires
 * (apps/sim/src/engine.ts), and prints nothing per request, so the counter is the only signal.
 * Each poll is served at some moment between its send and its answer: a poll that does not yet
 * see the abort puts it after that poll's send, the first that sees it puts it before that poll's
 * answer. The estimate is the middle of that interval (never earlier than the disconnect).
 */
async function measureOne(
  simUrl: string,
  pollAgent: Agent,
  target: Target,
  i: number,
  cfg: CancelConfig,
): Promise<Measurement> {
  const before = (await simStats(simUrl, pollAgent)).aborted;
  let tokens = 0;
  let cutAt = 0;
  const res = await postSSE(target.url, target.body(i), {
    headers: target.headers?.(i),
    timeoutMs: 10_000,
    onData: (data) => {
      const n = target.tokensIn(data);
      if (n === 0) return undefined;
      tokens += n;
      if (tokens < cfg.afterTokens) return undefined;
      cutAt = performance.now();
      return true;
    },
  });
  if (cutAt === 0) {
    return {
      ok: false,
      estimateMs: Number.NaN,
      upperMs: Number.NaN,
      widthMs: Number.NaN,
      error: `stream ended before ${cfg.afterTokens} tokens: status ${res.status}, ${res.data.at(-1) ?? res.body.slice(0, 200)}`,
    };
  }
  let lower = cutAt;
  while (performance.now() - cutAt < SEEN_TIMEOUT_MS) {
    const sent = performance.now();
    const { aborted } = await simStats(simUrl, pollAgent);
    const answered = performance.now();
    if (aborted > before) {
      const upper = answered;
      return {
        ok: true,
        estimateMs: (lower + upper) / 2 - cutAt,
        upperMs: upper - cutAt,
        widthMs: upper - lower,
      };
    }
    lower = Math.max(lower, sent);
    if (cfg.pollEveryMs > 0) await sleep(cfg.pollEveryMs);
  }
  return {
    ok: false,
    estimateMs: Number.NaN,
    upperMs: Number.NaN,
    widthMs: Number.NaN,
    error: `the simulator did not see the abort within ${SEEN_TIMEOUT_MS} ms`,
  };
}

function summarise(path: string, ms: Measurement[]): CancelRow {
  const ok = ms.filter((m) => m.ok);
  return {
    path,
    ok: ok.length,
    failed: ms.length - ok.length,
    p50: percentile(
      ok.map((m) => m.estimateMs),
      50,
    ),
    p99: percentile(
      ok.map((m) => m.estimateMs),
      99,
    ),
    upperP99: percentile(
      ok.map((m) => m.upperMs),
      99,
    ),
    resolutionP50: percentile(
      ok.map((m) => m.widthMs),
      50,
    ),
    firstError: ms.find((m) => !m.ok)?.error,
  };
}

/**
 * Client disconnect mid-stream → the simulator sees its request aborted: directly (the client's
 * socket is the simulator's), and through the gateway (api notices the close, removes-or-signals
 * the job, the worker aborts its backend request). Sequential, so each abort is attributable.
 */
export async function cancelScenario(cfg: CancelConfig): Promise<{ rows: CancelRow[]; lines: string[] }> {
  const stack = await startBenchStack({
    sim: {
      SIM_TTFT_MS: String(cfg.ttftMs),
      SIM_ITL_MS: String(cfg.itlMs),
      SIM_MAX_NUM_SEQS: '16',
      // Far longer than the client stays: every stream is cut mid-way.
      SIM_OUTPUT_TOKENS: '1000',
    },
    worker: { WORKER_CONCURRENCY: '16' },
  });
  const pollAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const messages = (i: number) => [{ role: 'user', content: `cancellation benchmark ${i}` }];
    const direct = openAITarget(`${stack.simUrl}/v1/chat/completions`, (i) => ({
      model: DEFAULT_MODEL,
      messages: messages(i),
      max_tokens: 1000,
      stream: true,
    }));
    const gateway = seedTarget(
      `${stack.apiUrls[0]}/chat`,
      (i) => ({ messages: messages(i), max_tokens: 1000 }),
      benchHeaders,
    );
    const run = async (n: number, target: Target) => {
      const out: Measurement[] = [];
      for (let i = 0; i < n; i++) {
        out.push(await measureOne(stack.simUrl, pollAgent, target, i, cfg));
        // Let the worker finish off the cancelled job before the next stream starts.
        await sleep(10);
      }
      return out;
    };
    await run(3, direct);
    await run(3, gateway);
    const rows = [
      summarise('direct (simulator)', await run(cfg.disconnects, direct)),
      summarise('gateway (/chat)', await run(cfg.disconnects, gateway)),
    ];
    const [d, g] = rows as [CancelRow, CancelRow];
    const lines = [
      `cancellation: ${cfg.disconnects} sequential disconnects per path after ${cfg.afterTokens} tokens (simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms); disconnect → simulator counts the abort, from /sim/stats polled every ${cfg.pollEveryMs} ms`,
      '',
      ...markdownTable(
        ['path', 'ok', 'failed', 'p50 ms', 'p99 ms', 'p99 upper bound ms', 'resolution p50 ms'],
        [
          ...rows.map((r) => [
            r.path,
            String(r.ok),
            String(r.failed),
            fmt(r.p50),
            fmt(r.p99),
            fmt(r.upperP99),
            fmt(r.resolutionP50, 2),
          ]),
          ['added by the gateway', '', '', fmt(g.p50 - d.p50), fmt(g.p99 - d.p99), '', ''],
        ],
      ),
      '',
      targetLine(`gateway p99 ≤ 50 ms (${fmt(g.p99)})`, g.p99 <= 50),
      ...rows.filter((r) => r.firstError).map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return { rows, lines };
  } finally {
    pollAgent.destroy();
    await stack.close();
  }
}
