import type { ChatJob, ErrorType } from '@llmgw/protocol';
import { DelayedError, type Job } from 'bullmq';

/**
 * Failures that say the backend is unwell, not that the request is wrong: connection refused or
 * reset, a 5xx, a 429, no first token in time. Before anything reached the client they are
 * retried (another worker preferred) and they count against this worker's circuit breaker.
 * A 4xx (`backend_bad_request`) is the request's fault: never retried, never counted.
 */
export const BACKEND_FAILURES: ReadonlySet<ErrorType> = new Set([
  'backend_unavailable',
  'backend_timeout',
  'backend_rate_limited',
  'backend_error',
]);

/** How long a job this worker gives back waits before another worker may take it. */
const HAND_BACK_DELAY_MS = 50;
/** A job handed back this often takes whatever worker comes next (no ping-pong). */
const MAX_HAND_BACKS = 3;

/** Thrown by the processor when the job went back to the queue; BullMQ retries it (or not, see below). */
export class Requeued extends Error {
  override name = 'Requeued';
}

/**
 * Puts the job back for another try after a backend failure before its first token.
 * - While this worker's breaker is open, the failure is the backend's, not the job's: the job
 *   is moved back without using one of its attempts (it waits for a healthy worker, bounded by
 *   its deadline).
 * - Otherwise BullMQ's own retry takes it (attempts and exponential backoff from the job's
 *   options, BACKEND_MAX_ATTEMPTS on the api).
 * Either way this worker's id is recorded, so other workers are preferred next time.
 */
export async function requeue(job: Job, token: string | undefined, instanceId: string, breakerOpen: boolean) {
  const data = job.data as ChatJob;
  await job.updateData({ ...data, failedOn: [...new Set([...(data.failedOn ?? []), instanceId])] });
  if (breakerOpen && token !== undefined) {
    await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
    throw new DelayedError();
  }
  throw new Requeued('backend failed before the first token; retrying');
}

/** Attempts left after this one, by BullMQ's count. */
export const attemptsLeft = (job: Job): number => (job.opts.attempts ?? 1) - (job.attemptsMade + 1);

/**
 * A job this worker already failed, while another worker with a closed breaker serves the model:
 * hand it back (a short delay, no attempt used) so that one takes it. At most a few times.
 */
export async function handBack(job: Job, token: string | undefined): Promise<void> {
  const data = job.data as ChatJob & { handBacks?: number };
  if (token === undefined || (data.handBacks ?? 0) >= MAX_HAND_BACKS) return;
  await job.updateData({ ...data, handBacks: (data.handBacks ?? 0) + 1 });
  await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
  throw new DelayedError();
}
