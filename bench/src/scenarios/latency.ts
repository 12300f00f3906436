import { cpus } from 'node:os';
import type { StreamSample } from '../load.ts';
import {
  GATEWAY_PATHS,
  GATEWAY_ROUTES,
  type PathName,
  type PathRun,
  runPaths,
  simulatedStack,
  startPeeredStack,
} from '../paths.ts';
import { fmt, fmtSigned, percentile } from '../stats.ts';
import { cpuTable, markdownTable, type TargetResult, targetLine } from '../table.ts';

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
 * One table of runs: a row per path (a skipped one says why), then per path but the direct one
 * what it added to the direct row's TTFT and gaps.
 */
function latencyTable(runs: PathRun[], rows: Map<PathName, LatencyRow>): string[] {
  const direct = rows.get('direct')!;
  const added = (r: LatencyRow) => [
    fmt(r.ttftP50 - direct.ttftP50),
    fmt(r.ttftP99 - direct.ttftP99),
    fmt(r.gapP50 - direct.gapP50),
    fmt(r.gapP99 - direct.gapP99),
  ];
  return markdownTable(
    ['path', 'ok', 'failed', 'TTFT p50 ms', 'TTFT p99 ms', 'gap p50 ms', 'gap p99 ms', 'tokens/stream'],
    [
      ...runs.map(({ path }) => {
        const r = rows.get(path.name)!;
        if (path.skipped) return [path.label, path.skipped, '', '', '', '', '', ''];
        return [
          path.label,
          String(r.ok),
          String(r.failed),
          fmt(r.ttftP50),
          fmt(r.ttftP99),
          fmt(r.gapP50),
          fmt(r.gapP99),
          fmt(r.tokensPerStream, 0),
        ];
      }),
      ...runs
        .filter(({ path }) => path.name !== 'direct' && !path.skipped)
        .map(({ path }) => [path.vsDirect, '', '', ...added(rows.get(path.name)!), '']),
    ],
  );
}

/**
 * The latency targets of issue 17 on each gateway path, from the concurrent runs: what it added
 * to the direct path's TTFT p50 and p99 and to its inter-token gap p99.
 */
function latencyTargets(
  runs: PathRun[],
  rows: Map<PathName, LatencyRow>,
  concurrency: number,
): TargetResult[] {
  const d = rows.get('direct')!;
  const measures = [
    {
      what: `added TTFT p50 at ${concurrency} concurrent`,
      of: (r: LatencyRow) => r.ttftP50,
      max: 5,
      target: '≤ 5 ms',
    },
    {
      what: `added TTFT p99 at ${concurrency} concurrent`,
      of: (r: LatencyRow) => r.ttftP99,
      max: 25,
      target: '≤ 25 ms',
    },
    {
      what: `inter-token gap p99 over direct at ${concurrency} concurrent`,
      of: (r: LatencyRow) => r.gapP99,
      max: 5,
      target: '≤ +5 ms',
    },
  ];
  return measures.flatMap(({ what, of, max, target }) =>
    GATEWAY_PATHS.map((name) => {
      const skipped = runs.find((r) => r.path.name === name)?.path.skipped;
      const g = rows.get(name);
      const added = g ? of(g) - of(d) : Number.NaN;
      return {
        measure: `${what} (${GATEWAY_ROUTES[name]})`,
        measured: skipped ?? (Number.isFinite(added) ? `${fmtSigned(added)} ms` : 'not measured'),
        target,
        met: Number.isFinite(added) && added <= max,
      };
    }),
  );
}

const rowsOf = (runs: PathRun[]) =>
  new Map(runs.map((r) => [r.path.name, summarise(r.path.label, r.samples)] as const));

/**
 * TTFT and inter-token gaps on every path of bench/src/paths.ts — the simulator directly, nginx,
 * Portkey and LiteLLM in front of it, the gateway (api → Redis → worker → simulator → worker → Redis →
 * api) on /v1/chat/completions and on /chat — in one run, against the same simulator.
 */
export async function latencyScenario(
  cfg: LatencyConfig,
): Promise<{ rows: LatencyRow[]; lines: string[]; targets: TargetResult[] }> {
  const peered = await startPeeredStack(simulatedStack(cfg), (i) => ({
    messages: [{ role: 'user', content: `benchmark request ${i}` }],
    max_tokens: cfg.tokens,
  }));
  try {
    // Warm-up of every path: connections, JIT, BullMQ scripts.
    await runPaths(peered, () => cfg.concurrency, cfg.concurrency, { cpu: false });
    const runs = await runPaths(peered, () => cfg.requests, cfg.concurrency, { cpu: true });
    const serialRuns = await runPaths(peered, () => cfg.serialRequests, 1, { cpu: false });
    const rows = rowsOf(runs);
    const serialRows = rowsOf(serialRuns);
    const d = rows.get('direct')!;
    const g = rows.get('gatewayChat')!;
    const lines = [
      `latency: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${cfg.requests} requests per path`,
      '',
      ...latencyTable(runs, rows),
      '',
      `the same streams one at a time (${cfg.serialRequests} per path; no contention for the CPU):`,
      '',
      ...latencyTable(serialRuns, serialRows),
      '',
      targetLine(`added TTFT p50 ≤ 5 ms (/chat: ${fmt(g.ttftP50 - d.ttftP50)})`, g.ttftP50 - d.ttftP50 <= 5),
      targetLine(
        `added TTFT p99 ≤ 25 ms (/chat: ${fmt(g.ttftP99 - d.ttftP99)})`,
        g.ttftP99 - d.ttftP99 <= 25,
      ),
      targetLine(`gap p99 ≤ direct + 5 ms (/chat: ${fmt(g.gapP99 - d.gapP99)})`, g.gapP99 - d.gapP99 <= 5),
      '',
      ...cpuTable(
        runs.flatMap((r) =>
          r.cpu ? [{ label: r.path.label, ok: rows.get(r.path.name)!.ok, cpu: r.cpu }] : [],
        ),
        cpus().length,
      ),
      ...[...rows.values(), ...serialRows.values()]
        .filter((r) => r.firstError)
        .map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return {
      rows: [...rows.values(), ...serialRows.values()],
      lines,
      targets: latencyTargets(runs, rows, cfg.concurrency),
    };
  } finally {
    await peered.close();
  }
}
