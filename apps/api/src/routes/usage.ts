import type { Context } from 'hono';
import { accepts } from 'hono/accepts';
import { describeRoute } from 'hono-openapi';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { API_KEY_SECURITY, errorResponses, GUARDED, json } from '../openapi/describe.ts';
import { UsageReport } from '../usage/bodies.ts';
import type { UsageScope } from '../usage/ledger.ts';
import { DEFAULT_DAYS, parseUsageQuery } from '../usage/query.ts';
import { reportCsv } from '../usage/report.ts';

export type UsageDeps = Pick<AppDeps, 'usage'>;

const CSV = 'text/csv';

const dayParam = (name: string, description: string) => ({
  in: 'query' as const,
  name,
  required: false,
  description,
  schema: { type: 'string' as const, pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
});

/** The query parameters both usage routes take. */
export const USAGE_PARAMETERS = [
  dayParam('start', `first UTC day, YYYY-MM-DD; default: ${DEFAULT_DAYS} days up to end`),
  dayParam('end', 'last UTC day, YYYY-MM-DD, included; default: today (UTC)'),
  {
    in: 'query' as const,
    name: 'group_by',
    required: false,
    description: 'a comma list of day, key, model, outcome: one row per value of them; default day',
    schema: { type: 'string' as const, default: 'day' },
  },
];

/**
 * `GET /v1/usage`: the caller's own usage (every key of its user), from the usage ledger: jobs and
 * tokens per UTC day, API key, model or outcome (`group_by`), for `start`..`end`; with PRICES_JSON,
 * their cost. JSON, or CSV with `Accept: text/csv`. The admin's view of everybody's is
 * `GET /admin/usage` (admin/usage-routes.ts).
 */
export function registerUsage(app: GatewayApp, deps: UsageDeps): void {
  const doc = describeRoute({
    tags: ['usage'],
    summary: "The caller's usage: jobs and tokens per day, key, model or outcome; JSON or CSV",
    security: API_KEY_SECURITY,
    parameters: USAGE_PARAMETERS,
    responses: {
      200: {
        description: 'the report; `Accept: text/csv` for CSV (a header line, then one line per row)',
        content: {
          ...json(UsageReport),
          [CSV]: { schema: { type: 'string', pattern: '^[a-z_]+(,[a-z_]+)*\\r\\n' } },
        },
      },
      ...errorResponses('openai', [400, ...GUARDED]),
    },
  });
  app.get('/v1/usage', doc, (c) => usageAnswer(c, deps, { user: c.get('principal')!.userId }, false));
}

/** A usage report for `scope`, in the representation the request accepts. */
export async function usageAnswer(
  c: Context<AppEnv>,
  deps: UsageDeps,
  scope: UsageScope,
  admin: boolean,
): Promise<Response> {
  const query = parseUsageQuery(c.req.query(), { admin, retentionDays: deps.usage.retentionDays });
  const report = await deps.usage.report(query, scope).catch((err: Error) => {
    c.get('log').warn({ err: err.message }, 'usage_read_failed');
    throw new ApiError('service_unavailable', 'the usage ledger is unavailable; retry shortly', {
      headers: { 'Retry-After': '1' },
    });
  });
  c.header('Vary', 'Accept');
  if (
    accepts(c, { header: 'Accept', supports: ['application/json', CSV], default: 'application/json' }) === CSV
  ) {
    return c.body(reportCsv(report, deps.usage.prices !== undefined), 200, {
      'Content-Type': 'text/csv; charset=utf-8',
    });
  }
  return c.json(report);
}
