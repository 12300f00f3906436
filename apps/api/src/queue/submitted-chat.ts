import type { Reservation } from '../admission/quota.ts';
import type { JobSubscription } from '../reply/subscription.ts';

/**
 * One request's job once it is on its model's queue: what the submitter, the queue watch, the
 * canceller and the relay all hold. Its own module so that none of them imports another for it.
 */
export interface SubmittedChat {
  jobId: string;
  model: string;
  sub: JobSubscription;
  enqueuedAt: number;
  /** performance.now() once enqueued. */
  enqueuedAtPerf: number;
  reservation?: Reservation;
}
