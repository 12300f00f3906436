import { ApiError } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';

/**
 * Where every refusal before the queue is counted, once: the 429s of the user's share by the limit
 * that refused (`llm_rate_limit_rejections_total`; the per-minute rate is counted by its
 * middleware), everything else by its reason (`llm_admission_rejections_total`). `tier` must be a
 * tier of the table, so the label stays bounded.
 */
export function countRejection(metrics: ApiMetrics, model: string, tier: string, err: unknown): void {
  if (!(err instanceof ApiError)) return;
  if (err.code === 'quota_exceeded') metrics.rateLimited.inc({ tier, limit: 'tokens' });
  else if (err.code === 'concurrency_limit_exceeded') metrics.rateLimited.inc({ tier, limit: 'concurrency' });
  else metrics.admissionRejected.inc({ model: metrics.modelLabel(model), reason: err.code, tier });
}
