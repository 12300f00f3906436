import type { Queue } from 'bullmq';
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

/** A batch request's BullMQ job id: `<batchId>-<index>` (BullMQ ids must not hold `:`). */
export const batchJobId = (batchId: string, index: number): string => `${batchId}-${index}`;

/** Jobs per addBulk: one MULTI each, so a 50,000-request batch is 100 round trips, none huge. */
export const BATCH_ENQUEUE_CHUNK = 500;

export interface BatchEnqueueOptions {
  /** BACKEND_MAX_ATTEMPTS: tries before the first token (the worker's claim keeps it to one run). */
  attempts?: number;
  /** BACKEND_RETRY_BACKOFF_MS. */
  backoffMs?: number;
}

/**
 * Puts a batch's requests on its model's batch queue (keys.batchQueueName), as the batches API
 * does and the lane's tests and bench do by hand: each job under {@link batchJobId}, in chunks
 * of {@link BATCH_ENQUEUE_CHUNK}. A finished job is removed at once: its answer is in the
 * batch's results (keys.batchResults), not in BullMQ. The batch's hash must say `in_progress`
 * before this: a worker skips a request whose batch does not.
 */
export async function enqueueBatchJobs<T extends { batch?: { id: string; index: number } }>(
  queue: Queue,
  jobs: T[],
  opts: BatchEnqueueOptions = {},
): Promise<void> {
  for (let i = 0; i < jobs.length; i += BATCH_ENQUEUE_CHUNK) {
    await queue.addBulk(
      jobs.slice(i, i + BATCH_ENQUEUE_CHUNK).map((data) => {
        if (!data.batch) throw new Error('enqueueBatchJobs: a job without `batch`');
        return {
          name: 'batch',
          data,
          opts: {
            jobId: batchJobId(data.batch.id, data.batch.index),
            attempts: opts.attempts ?? 1,
            backoff: { type: 'exponential', delay: opts.backoffMs ?? 250 },
            removeOnComplete: true,
            removeOnFail: true,
          },
        };
      }),
    );
  }
}
