import type { CpuUse } from './probes.ts';
import { fmt } from './stats.ts';

/** A markdown table: header cells, then rows (cells already formatted). */
export function markdownTable(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** `target: … — met` / `NOT met`, the line every scenario ends with per target. */
export const targetLine = (what: string, met: boolean): string =>
  `target: ${what} — ${met ? 'met' : 'NOT met'}`;

/**
 * CPU used per process while each path was measured, side by side, and per completed stream:
 * on a small machine the gateway's processes and the load generator share the same cores.
 */
export function cpuTable(
  direct: { use: CpuUse[]; wallS: number },
  gateway: { use: CpuUse[]; wallS: number },
  gatewayStreams: number,
  cores: number,
): string[] {
  const rows = gateway.use.map((g) => {
    const d = direct.use.find((u) => u.process === g.process);
    return [
      g.process,
      d ? fmt(d.cpuS) : '—',
      d ? fmt(d.cores, 2) : '—',
      fmt(g.cpuS),
      fmt(g.cores, 2),
      fmt((g.cpuS * 1000) / Math.max(1, gatewayStreams), 2),
    ];
  });
  const total = (u: CpuUse[]) => u.reduce((a, x) => a + (Number.isFinite(x.cpuS) ? x.cpuS : 0), 0);
  rows.push([
    `all (of ${cores} cores)`,
    fmt(total(direct.use)),
    fmt(total(direct.use) / direct.wallS, 2),
    fmt(total(gateway.use)),
    fmt(total(gateway.use) / gateway.wallS, 2),
    fmt((total(gateway.use) * 1000) / Math.max(1, gatewayStreams), 2),
  ]);
  return markdownTable(
    [
      'CPU by process',
      'direct run CPU s',
      'direct run cores',
      'gateway run CPU s',
      'gateway run cores',
      'gateway CPU ms per stream',
    ],
    rows,
  );
}
