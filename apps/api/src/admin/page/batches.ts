import type { Keys } from '@llmgw/redis';
import { html } from 'hono/html';
import type { Redis } from 'ioredis';
import { batchObject } from '../../batch/batches.ts';
import type { BatchObject } from '../../batch/bodies.ts';

/** The most batches the page lists. */
const SHOWN = 50;

export interface OpenBatch {
  user: string;
  batch: BatchObject;
}

/**
 * The batches not final yet (validating, in progress, finalizing, cancelling), soonest to expire
 * first, with their owners: what an operator looks at while the lane runs. One read of the open
 * set, then each batch's hash (its own slot on a Cluster).
 */
export async function openBatches(redis: Redis, keys: Keys): Promise<OpenBatch[]> {
  const ids = await redis.zrange(keys.openBatches, '0', String(SHOWN - 1));
  const hashes = await Promise.all(ids.map((id) => redis.hgetall(keys.batch(id))));
  return ids.flatMap((id, i) => {
    const h = hashes[i];
    return h && Object.keys(h).length > 0 ? [{ user: h.user ?? '', batch: batchObject(id, h) }] : [];
  });
}

const when = (s: number | null) =>
  s === null ? '' : new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');

/** The page's batches section: a table, or a line saying there are none. */
export function batchesSection(batches: readonly OpenBatch[]) {
  const head = html`<h2>Batches running (${batches.length})</h2>`;
  if (batches.length === 0) return html`${head}<p class="muted">No batch is running.</p>`;
  return html`${head}<table><thead><tr><th>Batch</th><th>User</th><th>Status</th><th>Endpoint</th><th>Done / total</th><th>Failed</th><th>Created (UTC)</th><th>Expires (UTC)</th></tr></thead><tbody>${batches.map(
    ({ user, batch: b }) =>
      html`<tr><td><code>${b.id}</code></td><td>${user}</td><td>${b.status}</td><td>${b.endpoint}</td><td>${b.request_counts.completed} / ${b.request_counts.total}</td><td>${b.request_counts.failed}</td><td>${when(b.created_at)}</td><td>${when(b.expires_at)}</td></tr>`,
  )}</tbody></table>`;
}
