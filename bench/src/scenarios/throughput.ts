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
import { sharedBenchRedis } from '../stack.ts';
import { fmt } from '../stats.ts';
import { cpuTable, markdownTable, type TargetResult } from '../table.ts';

export interface ThroughputConfig {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
  /** Streams per path: the faster ones get more, so that each runs for about as long. */
  requests: Record<PathName, number>;
}

export const THROUGHPUT_FULL: ThroughputConfig = {
  ttftMs: 0,
  itlMs: 0,
  tokens: 32,
  concurrency: 50,
  requests: { direct: 12_000, nginx: 8000, portkey: 4000, litellm: 500, gatewayV1: 4000, gatewayChat: 4000 },
};
export const THROUGHPUT_QUICK: ThroughputConfig = {
  ttftMs: 0,
  itlMs: 0,
  tokens: 32,
  concurrency: 10,
  requests: { direct: 100, nginx: 100, portkey: 100, litellm: 100, gatewayV1: 100, gatewayChat: 100 },
};

export interface ThroughputRow {
  path: string;
  ok: number;
  failed: number;
  wallS: number;
  streamsPerS: number;
  tokensPerS: number;
  /** Tokens the clients received, over the streams that completed. */
  tokens: number;
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
    tokens,
    firstError: samples.find((s) => !s.ok)?.error,
  };
}

/** The gateway's own processes (bench/src/probes.ts `measureCpu` names): api0…, worker0…, Redis. */
const onGatewayPath = (name: string) => /^(api|worker)\d+$/.test(name) || name === 'redis-server';

/**
 * The targets of issue 17 on each gateway path: CPU per relayed token of the api, worker and
 * Redis processes together, and completed streams per second over Portkey's, in the same run.
 */
function throughputTargets(runs: PathRun[], rows: Map<PathName, ThroughputRow>): TargetResult[] {
  const byName = new Map(runs.map((r) => [r.path.name, r] as const));
  const portkey = byName.get('portkey');
  const pk = rows.get('portkey');
  const shared = sharedBenchRedis();
  const redis = shared
    ? `; Redis is the shared one at ${shared}, not spawned by the bench: its CPU counts every client's commands`
    : '';
  const cpu: TargetResult[] = [];
  const vsPortkey: TargetResult[] = [];
  for (const name of GATEWAY_PATHS) {
    const run = byName.get(name);
    const r = rows.get(name);
    const route = GATEWAY_ROUTES[name];
    const cpuS = (run?.cpu?.use ?? [])
      .filter((u) => onGatewayPath(u.process))
      .reduce((a, u) => a + u.cpuS, run?.cpu ? 0 : Number.NaN);
    const us = (cpuS * 1e6) / (r?.tokens ?? 0);
    cpu.push({
      measure: `CPU per relayed token, api + worker + Redis (throughput, ${route}${redis})`,
      measured: run?.path.skipped ?? (Number.isFinite(us) ? `${fmt(us, 0)} µs` : 'not measured'),
      target: '≤ 40 µs',
      met: Number.isFinite(us) && us <= 40,
    });
    const ratio = (r?.streamsPerS ?? Number.NaN) / (pk?.streamsPerS ?? Number.NaN);
    vsPortkey.push({
      measure: `throughput ÷ ${portkey?.path.label ?? 'Portkey'} (${route})`,
      measured: portkey?.path.skipped
        ? `${portkey.path.label} ${portkey.path.skipped}`
        : (run?.path.skipped ?? (Number.isFinite(ratio) ? `${fmt(ratio, 2)}×` : 'not measured')),
      target: '≥ 1.5×',
      met: !portkey?.path.skipped && Number.isFinite(ratio) && ratio >= 1.5,
    });
  }
  return [...cpu, ...vsPortkey];
}

/**
 * Completed streams and tokens per second with a simulator that costs nothing per token (ITL 0):
 * what each path of bench/src/paths.ts can carry on this machine, the simulator alone first.
 */
export async function throughputScenario(
  cfg: ThroughputConfig,
): Promise<{ rows: ThroughputRow[]; lines: string[]; targets: TargetResult[] }> {
  const peered = await startPeeredStack(simulatedStack(cfg), (i) => ({
    messages: [{ role: 'user', content: `throughput request ${i}` }],
    max_tokens: cfg.tokens,
  }));
  try {
    await runPaths(peered, () => cfg.concurrency * 2, cfg.concurrency, { cpu: false });
    const runs: PathRun[] = await runPaths(peered, (p) => cfg.requests[p.name], cfg.concurrency, {
      cpu: true,
    });
    const rows = new Map(
      runs.map((r) => [r.path.name, summarise(r.path.label, r.samples, r.wallMs)] as const),
    );
    const d = rows.get('direct')!;
    const measured = runs.filter((r) => !r.path.skipped);
    const requests = runs.map((r) => `${cfg.requests[r.path.name]} ${r.path.name}`).join(' / ');
    const lines = [
      `throughput: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.tokens} tokens, ${cfg.concurrency} concurrent, ${requests} requests`,
      '',
      ...markdownTable(
        ['path', 'ok', 'failed', 'wall s', 'streams/s', 'tokens/s'],
        [
          ...runs.map(({ path }) => {
            const r = rows.get(path.name)!;
            if (path.skipped) return [path.label, path.skipped, '', '', '', ''];
            return [
              path.label,
              String(r.ok),
              String(r.failed),
              fmt(r.wallS),
              fmt(r.streamsPerS),
              fmt(r.tokensPerS, 0),
            ];
          }),
          ...measured
            .filter(({ path }) => path.name !== 'direct')
            .map(({ path }) => {
              const r = rows.get(path.name)!;
              return [
                `${path.label} ÷ direct`,
                '',
                '',
                '',
                fmt(r.streamsPerS / d.streamsPerS, 2),
                fmt(r.tokensPerS / d.tokensPerS, 2),
              ];
            }),
        ],
      ),
      '',
      'no target: each ratio is what that path costs when the backend is free',
      '',
      ...cpuTable(
        measured.flatMap((r) =>
          r.cpu ? [{ label: r.path.label, ok: rows.get(r.path.name)!.ok, cpu: r.cpu }] : [],
        ),
        cpus().length,
      ),
      ...[...rows.values()]
        .filter((r) => r.firstError)
        .map((r) => `first failure (${r.path}): ${r.firstError}`),
    ];
    return { rows: [...rows.values()], lines, targets: throughputTargets(runs, rows) };
  } finally {
    await peered.close();
  }
}
