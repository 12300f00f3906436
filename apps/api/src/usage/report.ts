import type { LedgerEntry } from '@llmgw/redis';
import type { UsageDimension, UsageReport, UsageRow } from './bodies.ts';
import type { Prices } from './prices.ts';
import type { UsageQuery } from './query.ts';

/** A row as it is summed: the tokens, and the costs while every model in it has a price. */
interface Sum {
  requests: number;
  prompt: number;
  completion: number;
  /** null once a model without a price is in the row. */
  input: number | null;
  output: number | null;
}

const dayOf = (yyyymmdd: string) => `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}`;

function dimensionOf(e: LedgerEntry, d: UsageDimension): string | null {
  switch (d) {
    case 'day':
      return dayOf(e.day);
    case 'user':
      return e.userId;
    case 'key':
      return e.keyId;
    case 'model':
      return e.model;
    case 'outcome':
      return e.outcome;
  }
}

/**
 * The ledger's entries as the report the query asks for: one row per value of its `group_by`
 * dimensions (in their order, sorted), each with its jobs and tokens, and with a price table the
 * costs (USD per million tokens, each entry at its model's price). Filters (`user`, `key`,
 * `model`) apply first; days outside the range are not in `entries` (the caller reads those).
 */
export function buildReport(entries: readonly LedgerEntry[], q: UsageQuery, prices?: Prices): UsageReport {
  const rows = new Map<string, { values: (string | null)[]; sum: Sum }>();
  const total = emptySum();
  for (const e of entries) {
    if (q.user !== undefined && e.userId !== q.user) continue;
    if (q.key !== undefined && e.keyId !== q.key) continue;
    if (q.model !== undefined && e.model !== q.model) continue;
    const values = q.groupBy.map((d) => dimensionOf(e, d));
    const id = JSON.stringify(values);
    let row = rows.get(id);
    if (!row) {
      row = { values, sum: emptySum() };
      rows.set(id, row);
    }
    add(row.sum, e, prices);
    add(total, e, prices);
  }
  const data = [...rows.values()]
    .sort((a, b) => compare(a.values, b.values))
    .map(({ values, sum }) => {
      const dims: Partial<Record<UsageDimension, string | null>> = {};
      q.groupBy.forEach((d, i) => {
        dims[d] = values[i] ?? null;
      });
      return { ...dims, ...body(sum, prices) } as UsageRow;
    });
  return {
    object: 'usage',
    start: q.start,
    end: q.end,
    group_by: q.groupBy,
    data,
    total: body(total, prices),
  };
}

const emptySum = (): Sum => ({ requests: 0, prompt: 0, completion: 0, input: 0, output: 0 });

function add(s: Sum, e: LedgerEntry, prices: Prices | undefined): void {
  s.requests += e.jobs;
  s.prompt += e.promptTokens;
  s.completion += e.completionTokens;
  const price = prices?.get(e.model);
  // A row of jobs that cost nothing has no price to miss.
  const free = e.promptTokens === 0 && e.completionTokens === 0;
  if (!price && !free) {
    s.input = null;
    s.output = null;
  } else if (price) {
    if (s.input !== null) s.input += (e.promptTokens * price.input) / 1e6;
    if (s.output !== null) s.output += (e.completionTokens * price.output) / 1e6;
  }
}

/** USD to the millionth of a cent is more than enough, and hides float noise. */
const usd = (x: number) => Math.round(x * 1e8) / 1e8;

function body(s: Sum, prices: Prices | undefined): UsageRow {
  const row: UsageRow = {
    requests: s.requests,
    prompt_tokens: s.prompt,
    completion_tokens: s.completion,
    total_tokens: s.prompt + s.completion,
  };
  if (prices) {
    row.input_cost_usd = s.input === null ? null : usd(s.input);
    row.output_cost_usd = s.output === null ? null : usd(s.output);
    row.cost_usd = s.input === null || s.output === null ? null : usd(s.input + s.output);
  }
  return row;
}

/** Rows in the order of their values, dimension by dimension; null (no key) first. */
function compare(a: (string | null)[], b: (string | null)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const METRICS = [
  'requests',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'input_cost_usd',
  'output_cost_usd',
  'cost_usd',
] as const;

/**
 * The report as CSV (RFC 4180: CRLF line ends, fields with a comma, quote or line break quoted):
 * a header, then one line per row, the grouped dimensions first; no total line (a spreadsheet
 * sums). Cost columns only with a price table; an empty field is a null.
 */
export function reportCsv(report: UsageReport, priced: boolean): string {
  const columns = [...report.group_by, ...METRICS.filter((m) => priced || !m.endsWith('_usd'))];
  const lines = [columns.join(',')];
  for (const row of report.data) {
    lines.push(columns.map((c) => csvField((row as Record<string, unknown>)[c])).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * One CSV field. A text starting like a formula (`=`, `+`, `-`, `@`, tab, CR: a user id or model
 * name chosen by somebody else) gets a leading `'`, so a spreadsheet shows it instead of running
 * it (OWASP's CSV injection advice); numbers are written as they are.
 */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
