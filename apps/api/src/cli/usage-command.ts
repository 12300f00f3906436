import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors/index.ts';
import type { UsageReport, UsageRow } from '../usage/bodies.ts';
import { usageReport } from '../usage/ledger.ts';
import type { Prices } from '../usage/prices.ts';
import { parseUsageQuery } from '../usage/query.ts';
import { reportCsv } from '../usage/report.ts';

export const USAGE_HELP =
  'usage [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--group-by day,user,key,model,outcome] ' +
  '[--user <id>] [--key <key_id>] [--model <m>] [--csv | --json]';

/** The flags `pnpm keys usage` takes, by the query parameter of `GET /admin/usage` each one is. */
const FLAGS = {
  start: 'start',
  end: 'end',
  'group-by': 'group_by',
  user: 'user',
  key: 'key',
  model: 'model',
};

export interface UsageCommandDeps {
  redis: Redis;
  keys: Keys;
  retentionDays: number;
  prices?: Prices;
}

/**
 * `pnpm keys usage …`: `GET /admin/usage` from the command line, the same report from the same
 * ledger, as a table (default), CSV (`--csv`) or the JSON body (`--json`). Throws an Error with
 * a message for the user on a bad flag.
 */
export async function usageCommand(args: string[], deps: UsageCommandDeps): Promise<string> {
  const params: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--csv' || arg === '--json' || arg === '--quiet') continue;
    const name = arg.startsWith('--') ? FLAGS[arg.slice(2) as keyof typeof FLAGS] : undefined;
    const value = args[i + 1];
    if (name === undefined || value === undefined) throw new Error(`usage: unknown or incomplete '${arg}'`);
    params[name] = value;
    i++;
  }
  let query: ReturnType<typeof parseUsageQuery>;
  try {
    query = parseUsageQuery(params, { admin: true, retentionDays: deps.retentionDays });
  } catch (err) {
    if (err instanceof ApiError) {
      const flag = Object.entries(FLAGS).find(([, p]) => p === err.opts.param)?.[0];
      throw new Error(`usage: ${flag ? `--${flag}: ` : ''}${err.message.replace('group_by', '--group-by')}`);
    }
    throw err;
  }
  const report = await usageReport(deps.redis, deps.keys, query, 'all', deps.prices);
  if (args.includes('--json')) return `${JSON.stringify(report, null, 2)}\n`;
  if (args.includes('--csv')) return reportCsv(report, deps.prices !== undefined);
  return table(report, deps.prices !== undefined);
}

/** The report as aligned columns, numbers right-aligned, a total line at the end. */
function table(report: UsageReport, priced: boolean): string {
  const metrics: (keyof UsageRow)[] = ['requests', 'prompt_tokens', 'completion_tokens', 'total_tokens'];
  if (priced) metrics.push('cost_usd');
  const columns: (keyof UsageRow)[] = [...report.group_by, ...metrics];
  const cell = (row: UsageRow, c: keyof UsageRow) => {
    const v = row[c];
    if (v === undefined) return '';
    if (v === null) return c === 'key' ? '(no key)' : '-';
    return String(v);
  };
  const rows = report.data.map((r) => columns.map((c) => cell(r, c)));
  const total = columns.map((c, i) =>
    i === 0 && report.group_by.length > 0 ? 'total' : cell(report.total, c),
  );
  const all = [columns.map(String), ...rows, total];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const numeric = (i: number) => metrics.includes(columns[i]!);
  const line = (r: string[]) =>
    r
      .map((v, i) => (numeric(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const head = `usage ${report.start} .. ${report.end} (UTC)${report.data.length === 0 ? ': none' : ''}`;
  return `${[head, line(all[0]!), ...rows.map(line), line(total)].join('\n')}\n`;
}
