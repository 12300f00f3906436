import { startOtlpReceiver } from '@llmgw/devkit';
import { runStreams, streamStats } from '../load.ts';
import { simulatedStack } from '../paths.ts';
import { measureCpu } from '../probes.ts';
import { gatewayV1Target, processPids, startBenchStack } from '../stack.ts';
import { fmt, fmtSigned } from '../stats.ts';
import { markdownTable } from '../table.ts';

export interface TracingBenchConfig {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
  /** Streams per round; each round runs tracing off, then on, each on a stack of its own. */
  requests: number;
  rounds: number;
}

export const TRACING_FULL: TracingBenchConfig = {
  ttftMs: 0,
  itlMs: 0,
  tokens: 32,
  concurrency: 50,
  requests: 3000,
  rounds: 2,
};
export const TRACING_QUICK: TracingBenchConfig = { ...TRACING_FULL, concurrency: 5, requests: 30, rounds: 1 };

export interface TracingRow {
  variant: 'off' | 'on';
  ok: number;
  failed: number;
  streamsPerS: number;
  ttftP50: number;
  ttftP99: number;
  /** api + worker CPU per stream, µs. */
  cpuUsPerStream: number;
  /** Spans the receiver got per stream (0 with tracing off). */
  spansPerStream: number;
  firstError?: string;
}

/**
 * What tracing costs the hot path: the same streams through `/v1/chat/completions` with tracing
 * off (no OTLP endpoint) and on (every request sampled, exported over OTLP/HTTP protobuf to a
 * receiver in the bench process, as a collector beside the gateway would take them), each on a
 * fresh stack, alternating for `rounds`. The receiver's own CPU is the bench's, not counted.
 */
export async function tracingScenario(
  cfg: TracingBenchConfig,
): Promise<{ rows: TracingRow[]; lines: string[] }> {
  const rows: TracingRow[] = [];
  for (let round = 0; round < cfg.rounds; round++) {
    for (const variant of ['off', 'on'] as const) rows.push(await runVariant(cfg, variant));
  }
  const merged = (['off', 'on'] as const).map((v) =>
    mergeRows(
      rows.filter((r) => r.variant === v),
      v,
    ),
  );
  const [off, on] = merged as [TracingRow, TracingRow];
  const lines = [
    `tracing: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${cfg.requests} streams × ${cfg.rounds} round(s) per variant, /v1/chat/completions, OTLP http/protobuf to a receiver in the bench process`,
    '',
    ...markdownTable(
      [
        'tracing',
        'ok',
        'failed',
        'streams/s',
        'TTFT p50 ms',
        'TTFT p99 ms',
        'api+worker CPU µs/stream',
        'spans/stream',
      ],
      merged.map((r) => [
        r.variant,
        String(r.ok),
        String(r.failed),
        fmt(r.streamsPerS),
        fmt(r.ttftP50),
        fmt(r.ttftP99),
        fmt(r.cpuUsPerStream, 0),
        fmt(r.spansPerStream, 1),
      ]),
    ),
    '',
    `tracing on vs off: throughput ${fmtSigned(((on.streamsPerS - off.streamsPerS) / off.streamsPerS) * 100)} %, ` +
      `CPU ${fmtSigned(on.cpuUsPerStream - off.cpuUsPerStream, 0)} µs/stream, TTFT p50 ${fmtSigned(on.ttftP50 - off.ttftP50)} ms`,
  ];
  for (const r of rows) if (r.firstError) lines.push(`first error (${r.variant}): ${r.firstError}`);
  return { rows, lines };
}

async function runVariant(cfg: TracingBenchConfig, variant: 'off' | 'on'): Promise<TracingRow> {
  const receiver = variant === 'on' ? await startOtlpReceiver() : undefined;
  const otel: Record<string, string> = receiver ? { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } : {};
  const base = simulatedStack(cfg);
  const stack = await startBenchStack({
    ...base,
    worker: { ...base.worker, ...otel },
    api: otel,
  });
  let closed = false;
  try {
    const target = gatewayV1Target(stack.apiUrls[0]!, 'tracing', cfg.tokens);
    const warmUp = cfg.concurrency * 2;
    await runStreams(target, warmUp, cfg.concurrency);
    const pids = Object.fromEntries(
      Object.entries(processPids(stack)).filter(([name]) => /^(api|worker)\d+$/.test(name)),
    );
    const { result, use } = await measureCpu(pids, undefined, () =>
      runStreams(target, cfg.requests, cfg.concurrency),
    );
    const { samples, wallMs } = result;
    const ok = samples.filter((s) => s.ok);
    const cpuS = use.filter((u) => /^(api|worker)\d+$/.test(u.process)).reduce((a, u) => a + u.cpuS, 0);
    // Spans per stream, over every stream the stack served (its priming request, the warm-up and
    // the measured ones): the exporters send every 5 s (OTEL_BSP_SCHEDULE_DELAY), so which export
    // holds which stream's spans is not known; the stack's close flushes the last ones.
    await stack.close();
    closed = true;
    const served = 1 + warmUp + samples.length;
    const spans = receiver ? spanCount(receiver.exports()) / served : 0;
    return {
      variant,
      ...streamStats(samples, wallMs),
      cpuUsPerStream: (cpuS * 1e6) / Math.max(1, ok.length),
      spansPerStream: spans,
    };
  } finally {
    if (!closed) await stack.close();
    await receiver?.close();
  }
}

/**
 * Spans in OTLP/protobuf exports without a protobuf decoder: each span of an export is one
 * `Span` message whose 8-byte span id field is tagged 0x12 0x08 right after its 16-byte trace id
 * (field 1, tag 0x0a 0x10). Counts that pair of tags.
 */
function spanCount(exports: { body: Buffer }[]): number {
  let n = 0;
  for (const { body } of exports) {
    for (let i = 0; i + 19 < body.length; i++) {
      if (body[i] === 0x0a && body[i + 1] === 0x10 && body[i + 18] === 0x12 && body[i + 19] === 0x08) n++;
    }
  }
  return n;
}

function mergeRows(rows: TracingRow[], variant: 'off' | 'on'): TracingRow {
  const sum = (f: (r: TracingRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const ok = sum((r) => r.ok);
  const mean = (f: (r: TracingRow) => number) => sum(f) / Math.max(1, rows.length);
  return {
    variant,
    ok,
    failed: sum((r) => r.failed),
    streamsPerS: mean((r) => r.streamsPerS),
    ttftP50: mean((r) => r.ttftP50),
    ttftP99: mean((r) => r.ttftP99),
    cpuUsPerStream: mean((r) => r.cpuUsPerStream),
    spansPerStream: mean((r) => r.spansPerStream),
  };
}
