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

/** One hot-path target of issue 17 as a scenario measured it: a row of the run's targets table. */
export interface TargetResult {
  /** What, on which path, under what load ("added TTFT p50 at 100 concurrent (/chat)"). */
  measure: string;
  /** The value with its unit ("+412.2 ms"), or why there is none. */
  measured: string;
  /** The bound with its unit ("≤ 5 ms"). */
  target: string;
  met: boolean;
}

/** The one table `pnpm bench` ends with: every target the scenarios of the run measured. */
export const targetsTable = (targets: TargetResult[]): string[] =>
  markdownTable(
    ['measure', 'measured', 'target', 'met'],
    targets.map((t) => [t.measure, t.measured, t.target, t.met ? 'yes' : 'no']),
  );

/** `target: … — met` / `NOT met`, the line every scenario ends with per target. */
export const targetLine = (what: string, met: boolean): string =>
  `target: ${what} — ${met ? 'met' : 'NOT met'}`;

/**
 * CPU per completed stream of each path, by process, and the cores all of them kept busy: on a
 * small machine every process of the run and the load generator share the same cores, so what a
 * path costs is the sum (a process not on the path shows only its idle cost).
 */
export function cpuTable(
  runs: { label: string; ok: number; cpu: { use: CpuUse[]; wallS: number } }[],
  cores: number,
): string[] {
  const processes = runs[0]?.cpu.use.map((u) => u.process) ?? [];
  const rows = runs.map((r) => {
    const perStream = (cpuS: number) => fmt((cpuS * 1000) / Math.max(1, r.ok), 2);
    const total = r.cpu.use.reduce((a, u) => a + (Number.isFinite(u.cpuS) ? u.cpuS : 0), 0);
    return [
      r.label,
      ...r.cpu.use.map((u) => perStream(u.cpuS)),
      perStream(total),
      fmt(total / r.cpu.wallS, 2),
    ];
  });
  return markdownTable(['CPU ms per stream', ...processes, 'all', `cores busy (of ${cores})`], rows);
}
