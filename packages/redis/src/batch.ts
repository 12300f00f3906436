import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { withScripts } from './scripts.ts';

export interface BatchProgress {
  /** False when this request had been recorded already (or its batch is gone). */
  recorded: boolean;
  completed: number;
  failed: number;
  total: number;
}

/** Records a batch request's end once (batch-result-2.lua). */
export async function recordBatchResult(
  redis: Redis,
  keys: Keys,
  batchId: string,
  index: number,
  /** A BatchResult (@llmgw/protocol). */
  result: { ok: boolean },
  /** Its counter: a cancelled batch's request that never started is neither completed nor failed. */
  outcome: 'completed' | 'failed' | 'cancelled' = result.ok ? 'completed' : 'failed',
): Promise<BatchProgress> {
  const [recorded, completed, failed, total] = await withScripts(redis).batchResult(
    keys.batchResults(batchId),
    keys.batch(batchId),
    index,
    JSON.stringify(result),
    outcome,
  );
  return { recorded: recorded === 1, completed, failed, total };
}

/** How long a "this request reached a backend" marker lives: longer than a batch's window. */
export const BATCH_RAN_TTL_S = 2 * 24 * 3600;

/**
 * Claims request `index` of a batch before its backend call: false when it reached a backend
 * already (its worker died mid-generation and BullMQ handed it out again), which must not run
 * it twice. A request that failed before reaching the backend gives its claim back.
 */
export async function claimBatchRequest(
  redis: Redis,
  keys: Keys,
  batchId: string,
  index: number,
): Promise<boolean> {
  return (await redis.set(keys.batchRan(batchId, index), '1', 'EX', BATCH_RAN_TTL_S, 'NX')) === 'OK';
}

export async function releaseBatchRequest(
  redis: Redis,
  keys: Keys,
  batchId: string,
  index: number,
): Promise<void> {
  await redis.del(keys.batchRan(batchId, index));
}
