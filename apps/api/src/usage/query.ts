import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import { USAGE_DIMENSIONS, type UsageDimension } from './bodies.ts';

/** What a usage report covers and how its rows are cut. */
export interface UsageQuery {
  /** First and last UTC day, `YYYY-MM-DD`, both included. */
  start: string;
  end: string;
  groupBy: UsageDimension[];
  /** Admin filters: only this user's, key's, model's jobs. */
  user?: string;
  key?: string;
  model?: string;
}

const DAY_MS = 86_400_000;
/** Without `start`: the 30 days up to `end`. */
export const DEFAULT_DAYS = 30;
export const DEFAULT_GROUP_BY: UsageDimension[] = ['day'];

export interface QueryRules {
  /** `/admin/usage`: the `user`, `key` and `model` filters and `group_by=user`. */
  admin: boolean;
  /** USAGE_RETENTION_DAYS: no range is longer (older days are gone anyway). */
  retentionDays: number;
  now?: number;
}

/** `YYYY-MM-DD` of a UTC day. */
export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * The query string of `GET /v1/usage` (`start`, `end`, `group_by`) or `GET /admin/usage` (those,
 * and `user`, `key`, `model`), checked: a bad or unknown parameter is 400 `invalid_request` naming
 * it, in the path's error body.
 */
export function parseUsageQuery(params: Record<string, string | undefined>, rules: QueryRules): UsageQuery {
  const allowed = rules.admin
    ? ['start', 'end', 'group_by', 'user', 'key', 'model']
    : ['start', 'end', 'group_by'];
  for (const name of Object.keys(params)) {
    if (!allowed.includes(name)) {
      throw invalid(name, `unknown parameter '${clip(name)}' (${allowed.join(', ')})`);
    }
  }
  const today = isoDay(rules.now ?? Date.now());
  const end = params.end === undefined ? today : day(params.end, 'end');
  const start =
    params.start === undefined ? isoDay(msOf(end) - (DEFAULT_DAYS - 1) * DAY_MS) : day(params.start, 'start');
  if (start > end) throw invalid('start', `start ${start} is after end ${end}`);
  const days = (msOf(end) - msOf(start)) / DAY_MS + 1;
  if (days > rules.retentionDays) {
    throw invalid(
      'start',
      `${days} days asked; at most ${rules.retentionDays} (USAGE_RETENTION_DAYS: older days are not kept)`,
    );
  }
  const query: UsageQuery = { start, end, groupBy: groupBy(params.group_by, rules.admin) };
  for (const name of ['user', 'key', 'model'] as const) {
    const value = params[name];
    if (value === undefined) continue;
    if (value === '') throw invalid(name, `${name} is empty`);
    query[name] = value;
  }
  return query;
}

function day(raw: string, name: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
  const ms = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : Number.NaN;
  // Date.UTC rolls 2026-02-30 over to March: a day that does not exist reads back otherwise.
  if (!m || Number.isNaN(ms) || isoDay(ms) !== raw) {
    throw invalid(name, `${name} must be a UTC day, YYYY-MM-DD (got '${clip(raw)}')`);
  }
  return raw;
}

const msOf = (isoDate: string) => Date.parse(`${isoDate}T00:00:00Z`);

function groupBy(raw: string | undefined, admin: boolean): UsageDimension[] {
  if (raw === undefined) return DEFAULT_GROUP_BY;
  const allowed: readonly string[] = admin ? USAGE_DIMENSIONS : USAGE_DIMENSIONS.filter((d) => d !== 'user');
  const dims = raw.split(',').map((d) => d.trim());
  for (const d of dims) {
    if (!allowed.includes(d)) {
      throw invalid('group_by', `group_by: '${clip(d)}' is not one of ${allowed.join(', ')} (a comma list)`);
    }
  }
  if (new Set(dims).size !== dims.length) throw invalid('group_by', 'group_by names a dimension twice');
  return dims as UsageDimension[];
}

const invalid = (param: string, message: string) => new ApiError('invalid_request', message, { param });

/** The UTC days of the query, `YYYYMMDD` (the ledger's keys), oldest first. */
export function daysOf(q: Pick<UsageQuery, 'start' | 'end'>): string[] {
  const out: string[] = [];
  for (let ms = msOf(q.start); ms <= msOf(q.end); ms += DAY_MS) out.push(isoDay(ms).replaceAll('-', ''));
  return out;
}
