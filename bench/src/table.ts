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
